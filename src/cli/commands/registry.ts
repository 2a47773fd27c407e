/**
 * `neuron registry status` and `neuron registry reset`: the organization's registration with the
 * Axon registry (docs/registry.md). Both read and write the database the server uses, so they
 * work whether or not the Neuron runs; reset refuses while any instance runs the registry client.
 */
import type { Command } from 'commander';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import {
  providerStateCounts,
  readRegistryStatus,
  registryClientHolder,
  resetRegistration,
  type RegistryStatusView,
} from '../../network/presence/index.ts';
import { globalOptions, loadForCli, openForCli, cliAudit } from '../context.ts';
import { CliError, EXIT, colours, out, printJson } from '../output.ts';
import { runningInstance } from '../pidfile.ts';

export function registerRegistry(program: Command): void {
  const registry = program.command('registry').description("the organization's registration with the Axon registry");

  registry
    .command('status')
    .description(
      "registration id, registry URL, last heartbeat, failures and each provider's registry state (never the token); exits 1 when the registration is invalid",
    )
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }, command: Command) => {
      const loaded = loadForCli(globalOptions(command));
      const storage = await openForCli(loaded, { mustExist: true, migrate: false });
      let view: RegistryStatusView;
      try {
        view = await readRegistryStatus(storage, loaded.config);
      } finally {
        await storage.close();
      }
      if (options.json) printJson(view);
      else for (const line of formatRegistryStatus(view, { providers: 'all' })) out(line);
      if (view.state === 'invalid') process.exitCode = EXIT.FAILURE;
    });

  registry
    .command('reset')
    .description('forget the stored registration id, token and provider registry states, so the next start registers anew (audited)')
    .option('-y, --yes', 'confirm: the registry never reissues a token')
    .action(async (options: { yes?: boolean }, command: Command) => {
      if (!options.yes) {
        throw new CliError(
          'reset forgets the registration id and bearer token for good; the registry keeps its entry and never reissues a token, so registering again ' +
            'works only after the registry operator removed the old entry. Stop every Neuron instance, then run `neuron registry reset --yes`',
          EXIT.USAGE,
        );
      }
      const loaded = loadForCli(globalOptions(command));
      const running = runningInstance(loaded.paths.pidFile);
      if (running) {
        throw new CliError(
          `a Neuron is running for ${loaded.paths.dataDir} (pid ${running.pid}); stop it with \`neuron stop\`, then reset`,
        );
      }
      const storage = await openForCli(loaded, { mustExist: true, migrate: false });
      try {
        const holder = await registryClientHolder(storage);
        if (holder !== null) {
          throw new CliError(
            `Neuron instance ${holder.holder} on this database runs the registry client (lease until ${holder.expiresAt}); ` +
              'stop every instance that uses this database, then reset',
          );
        }
        const { key } = await ensureOrganizationKey(storage.db);
        const audit = cliAudit(storage, key);
        const cleared = await resetRegistration(storage, (event) => audit.record(event), 'cli', loaded.config);
        const paint = colours();
        if (cleared.registrationId === null)
          out(`${paint('green', 'Reset')}: no registration was stored; provider registry states cleared`);
        else out(`${paint('green', 'Reset')}: forgot registration ${cleared.registrationId} with ${cleared.registryUrl ?? 'the registry'}`);
        if (cleared.agentCard === 'removed') out("The organization's agent card was removed from the registry");
        else if (cleared.agentCard !== 'none_published')
          out(
            `${paint('yellow', 'Note')}: the agent card is still listed in the registry (${cleared.agentCard.left}); the next start removes it unless services are configured`,
          );
        out('Next: `neuron start` registers the organization and its active providers again');
      } finally {
        await storage.close();
      }
    });
}

/**
 * Human lines for a registry status, shared with `neuron status`. `providers: 'summary'` prints
 * counts per state plus the providers with a problem; `'all'` one line per provider.
 */
export function formatRegistryStatus(view: RegistryStatusView, options: { providers: 'summary' | 'all' }): string[] {
  const paint = colours();
  const label = 'registry      ';
  const indent = '              ';
  const lines: string[] = [];
  switch (view.state) {
    case 'disabled':
      lines.push(
        `${label}disabled (registry.enabled is false)${view.registration_id ? `; a registration ${view.registration_id} is stored` : ''}`,
      );
      return lines;
    case 'registered':
      lines.push(`${label}${paint('green', 'registered')} with ${view.registry_url} (registration ${view.registration_id ?? '?'})`);
      break;
    case 'invalid':
      lines.push(
        `${label}${paint('red', 'INVALID')}${view.registration_id ? ` (registration ${view.registration_id})` : ''} with ${view.registry_url}`,
      );
      break;
    default:
      lines.push(`${label}${paint('yellow', view.state)} with ${view.registry_url}`);
  }
  const heartbeat = view.last_heartbeat_at === null ? 'none yet' : `${view.last_heartbeat_at} (${ago(view.last_heartbeat_at)})`;
  lines.push(
    `${indent}last heartbeat ${heartbeat}, ${view.consecutive_failures} consecutive failure${view.consecutive_failures === 1 ? '' : 's'}`,
  );
  if (view.endpoint_url !== null) lines.push(`${indent}listed at      ${view.endpoint_url}`);
  if (view.last_error !== null) lines.push(`${indent}last error     ${view.last_error}`);
  if (view.remedy !== null) lines.push(`${indent}${paint('red', 'remedy')}         ${view.remedy}`);
  if (!view.client_running && view.state !== 'unregistered')
    lines.push(`${indent}(no Neuron instance runs the registry client now${view.as_of ? `; as of ${view.as_of}` : ''})`);
  const counts = Object.entries(providerStateCounts(view));
  lines.push(`${indent}providers      ${counts.length === 0 ? 'none active' : counts.map(([state, n]) => `${n} ${state}`).join(', ')}`);
  for (const provider of view.providers) {
    const problem = provider.registry_error !== null || provider.registry_state === 'rejected';
    if (options.providers === 'summary' && !problem) continue;
    const roster = provider.roster_status ?? 'not on the roster';
    const error = provider.registry_error === null ? '' : `: ${provider.registry_error}`;
    lines.push(
      `${indent}  ${provider.npi}  ${provider.name ?? ''}${provider.name ? '  ' : ''}(${roster})  ${provider.registry_state}${error}`,
    );
  }
  return lines;
}

function ago(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3_600)} h ago`;
}
