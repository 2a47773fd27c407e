/**
 * The organization's agent card: what it offers the CareAgent network, in the registry's
 * A2A-style card format (shared/spec/registry.md, "Agent cards"). Pure: built from the
 * configuration's `services` section, the organization, the handshake URL and the active roster.
 *
 * The registry validates nothing and merges a PUT over the card it holds, so every card this
 * builds has the same fixed shape (every optional member present, empty text where nothing is
 * configured): an update then replaces every member, and a member that was dropped from the
 * configuration cannot linger from an earlier card.
 */
import type { ProviderInput } from './client.ts';

export interface AgentCardCapability {
  name: string;
  description: string;
}

export interface AgentCardLocation {
  address: string;
  city: string;
  state: string;
  zip: string;
  country: string;
}

export interface AgentCard {
  id: string;
  name: string;
  description: string;
  version: string;
  /** The Neuron's handshake URL: where a patient's CareAgent starts a relationship. */
  url: string;
  capabilities: AgentCardCapability[];
  provider: { organization: string; url: string };
  careagent: {
    practice_npi: string;
    organization: string;
    specialty: string;
    provider_type: string;
    location: AgentCardLocation;
    consent_required: true;
    classification: 'clinical';
  };
}

/** The `services` configuration section (src/foundation/config/schema.ts). */
export interface ServicesOffer {
  description: string;
  capabilities: Array<{ name: string; description: string }>;
  specialty: string;
  location: AgentCardLocation;
}

export interface AgentCardInput {
  organization: { npi: string; name: string };
  services: ServicesOffer;
  /** The public handshake URL (ws(s)://…/ws/handshake). */
  handshakeUrl: string;
  /** The public base URL of the Neuron (http(s)://…). */
  publicUrl: string;
  /** The Neuron's version. */
  version: string;
  /** The active providers; they supply the specialty and provider type when all agree. */
  roster: readonly ProviderInput[];
}

/**
 * The card's id in the registry: one card per organization, named by its NPI so that a restart,
 * another instance or a lost local record all address the same card.
 */
export function agentCardId(organizationNpi: string): string {
  return `neuron-${organizationNpi}`;
}

/** The organization's card, or null when it offers no capability (then no card is published). */
export function buildAgentCard(input: AgentCardInput): AgentCard | null {
  const { organization, services } = input;
  if (services.capabilities.length === 0) return null;
  return {
    id: agentCardId(organization.npi),
    name: organization.name,
    description:
      services.description !== ''
        ? services.description
        : `Consent handshakes with ${organization.name}'s care team on the CareAgent network`,
    version: input.version,
    url: input.handshakeUrl,
    capabilities: services.capabilities.map((capability) => ({ name: capability.name, description: capability.description })),
    provider: { organization: organization.name, url: input.publicUrl },
    careagent: {
      practice_npi: organization.npi,
      organization: organization.name,
      specialty: services.specialty !== '' ? services.specialty : sharedValue(input.roster.map((provider) => provider.specialty ?? '')),
      provider_type: sharedValue(input.roster.flatMap((provider) => provider.types)),
      location: { ...services.location },
      consent_required: true,
      classification: 'clinical',
    },
  };
}

/** The one value every entry has, or '' when they differ or there is none. */
function sharedValue(values: readonly string[]): string {
  const distinct = new Set(values.filter((value) => value !== ''));
  return distinct.size === 1 ? [...distinct][0]! : '';
}

/** Identifies a card's content (buildAgentCard always writes the members in the same order). */
export function agentCardFingerprint(card: AgentCard | null): string {
  return card === null ? 'none' : JSON.stringify(card);
}
