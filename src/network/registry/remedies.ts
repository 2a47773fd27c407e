/**
 * What an operator has to do about a registry registration that cannot be used. Pure: the
 * service, `neuron registry status` and the status route all explain a fault the same way.
 */

/** Why a registration cannot be used; none of these fixes itself. */
export type InvalidReason =
  | 'unauthorized'
  | 'organization_already_registered'
  | 'registration_rejected'
  | 'registry_changed'
  | 'state_unreadable';

export interface RemedyContext {
  organizationNpi: string;
  registryUrl: string;
  storedRegistryUrl: string | null;
  storedNpi: string | null;
  detail: string | null;
}

/** What the operator has to do about a registration that cannot be used. Pure. */
export function remedyFor(reason: InvalidReason, context: RemedyContext): string {
  switch (reason) {
    case 'unauthorized':
      return (
        "The registry no longer accepts this Neuron's registration (it answered 401: the token was revoked or the registration was removed). " +
        'Tokens are never reissued, so this will not fix itself and the Neuron has stopped heartbeating; it keeps serving patients who reach it, ' +
        'but the registry refuses patients a grant once the endpoint is stale. ' +
        'Contact the registry operator with the registration id shown in the registry status. If they confirm it is gone, have them remove the organization entry, ' +
        'then stop the Neuron, run `neuron registry reset --yes` and start it again to register anew.'
      );
    case 'organization_already_registered':
      return (
        `Organization NPI ${context.organizationNpi} is already registered in the registry, but this Neuron holds no credentials for it ` +
        '(the stored registration was lost, or another installation registered it). Tokens are never reissued: restore the registry state from a backup, ' +
        'or ask the registry operator to remove the existing entry, then restart the Neuron.'
      );
    case 'registration_rejected':
      return (
        `The registry refused to register the organization${context.detail ? ` (${context.detail})` : ''}. ` +
        'Check organization.npi (ten digits passing the Luhn check), organization.name and organization.type in the configuration, then restart the Neuron.'
      );
    case 'registry_changed':
      return (
        `The stored registration belongs to registry ${context.storedRegistryUrl ?? '?'} for organization NPI ${context.storedNpi ?? '?'}, ` +
        `but the configuration now says registry ${context.registryUrl} and NPI ${context.organizationNpi}. ` +
        'Put the previous values back, or stop the Neuron, run `neuron registry reset --yes` and start it again to register anew (the old entry stays in the old registry).'
      );
    case 'state_unreadable':
      return (
        `The stored registry registration cannot be read (${context.detail ?? 'unknown error'}). Repair or restore it from a backup and restart the Neuron. ` +
        'Do not delete it: the registry never reissues a token, so registering again needs the registry operator to remove the old entry first.'
      );
  }
}
