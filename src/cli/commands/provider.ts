/**
 * `neuron provider add|list|show|update|approve|suspend|remove`: the provider roster from the
 * command line, through the same service the REST API uses (src/domains/providers/service.ts). Works
 * whether or not the Neuron is running: the server reads the roster from the database on every
 * handshake, so a change here counts from the next one. Every change is audited as `cli`.
 *
 * Exit codes: 0 done; 2 bad input (nothing written); 1 anything else (unknown NPI, conflict,
 * database trouble).
 */
import type { Command } from 'commander';
import { isValidNpi, NPI_RULE, PROVIDER_TYPES } from '../../foundation/config/index.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import { OutboundPolicy } from '../../foundation/outbound/index.ts';
import { ProviderService, type CreateProviderInput, type RosterActor, type UpdateProviderInput } from '../../domains/providers/index.ts';
import { OutboxService } from '../../domains/outbox/index.ts';
import { toProviderView } from '../../domains/providers/routes.ts';
import type { Provider } from '../../domains/providers/store.ts';
import { PROVIDER_STATUSES, providerFieldProblems, type ProviderStatus } from '../../domains/providers/validation.ts';
import type { ProviderViewType } from '../../domains/providers/schemas.ts';
import type { Storage } from '../../foundation/storage/index.ts';
import { globalOptions, loadForCli, openForCli, cliAudit } from '../context.ts';
import { CliError, EXIT, colours, out, printJson } from '../output.ts';

/** Roster changes made here are audited as the operator at the console (no API key involved). */
const CLI_ACTOR: RosterActor = { actor: 'cli', keyId: null };

/** Providers read per page while printing the whole roster. */
const LIST_PAGE_SIZE = 200;

/** How the service's field names are spelled on this command line. */
const FLAG_OF: Record<string, string> = {
  npi: '<npi>',
  name: '--name',
  provider_types: '--types',
  specialty: '--specialty',
  provider_endpoint: '--endpoint',
  provider_public_key: '--public-key',
  notification_url: '--notification-url',
  status: '--status',
};

function flagFor(path: string): string {
  const [field, ...rest] = path.split('.');
  const flag = FLAG_OF[field ?? ''] ?? field ?? path;
  return rest.length > 0 ? `${flag} (item ${rest.join('.')})` : flag;
}

function invalidProvider(problems: ReadonlyArray<{ path: string; message: string }>): CliError {
  return new CliError(`invalid provider:\n${problems.map((e) => `  - ${flagFor(e.path)} ${e.message}`).join('\n')}`, EXIT.USAGE);
}

async function withRoster<T>(
  command: Command,
  options: { create: boolean },
  work: (service: ProviderService, organizationPublicKey: string) => Promise<T>,
): Promise<T> {
  // Adding the first provider may create the database (as `neuron init` would); the rest need one.
  const loaded = loadForCli(globalOptions(command));
  const storage: Storage = await openForCli(loaded, { mustExist: !options.create, migrate: options.create });
  try {
    const { key } = await ensureOrganizationKey(storage.db);
    const audit = cliAudit(storage, key);
    const outbox = new OutboxService({ storage, audit });
    return await work(new ProviderService({ storage, audit, outbound: new OutboundPolicy(loaded.config.outbound), outbox }), key.publicKey);
  } catch (error) {
    if (error instanceof NeuronError) {
      if ((error.code === 'VALIDATION_FAILED' || error.code === 'OUTBOUND_TARGET_REFUSED') && error.errors) {
        throw invalidProvider(error.errors);
      }
      throw new CliError(error.message, error.code === 'VALIDATION_FAILED' ? EXIT.USAGE : EXIT.FAILURE);
    }
    throw error;
  } finally {
    await storage.close();
  }
}

function checkNpi(npi: string): string {
  if (!isValidNpi(npi)) throw new CliError(`${npi} is not a valid NPI: ${NPI_RULE}`, EXIT.USAGE);
  return npi;
}

/** A comma-separated flag value as a list, unchecked (the service checks each item). */
function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function parseTypes(text: string): string[] {
  const types = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const unknown = types.filter((t) => !(PROVIDER_TYPES as readonly string[]).includes(t));
  if (types.length === 0 || unknown.length > 0) {
    throw new CliError(
      `--types takes a comma-separated list of ${PROVIDER_TYPES.join(', ')}${unknown.length > 0 ? ` (not: ${unknown.join(', ')})` : ''}`,
      EXIT.USAGE,
    );
  }
  return types;
}

function paintStatus(status: ProviderStatus): string {
  const paint = colours();
  if (status === 'active') return paint('green', status);
  if (status === 'pending') return paint('yellow', status);
  return paint('red', status);
}

function printProvider(view: ProviderViewType): void {
  const paint = colours();
  out(`${paint('bold', view.npi)}  ${view.name}  ${paintStatus(view.status)}`);
  const line = (label: string, value: string | null): void => out(`  ${label.padEnd(18)}${value ?? paint('dim', 'none')}`);
  line('types', view.provider_types.join(', '));
  line('specialty', view.specialty);
  line('endpoint', view.provider_endpoint);
  line('public key', view.provider_public_key);
  line('notification url', view.notification_url ?? 'none (the provider pulls its notices)');
  line('registration id', view.registration_id_prefix === null ? null : `${view.registration_id_prefix}… (shown whole only once)`);
  line('agent', view.agent_status ?? 'not heard from yet');
  line('credential', view.credential_id === null ? null : `issued (id ${view.credential_id})`);
  line('last seen', view.last_seen_at);
  line('registry', view.registry_state);
  line('updated', view.updated_at);
}

interface FieldOptions {
  name?: string;
  types?: string;
  specialty?: string;
  endpoint?: string;
  publicKey?: string;
  notificationUrl?: string;
}

const CLEARABLE: Record<string, keyof UpdateProviderInput> = {
  specialty: 'specialty',
  endpoint: 'provider_endpoint',
  'public-key': 'provider_public_key',
  'notification-url': 'notification_url',
};

function fieldFlags(command: Command): Command {
  return command
    .option('--types <types>', `comma-separated provider types: ${PROVIDER_TYPES.join(', ')}`)
    .option('--specialty <text>', 'specialty, for example cardiology')
    .option('--endpoint <url>', "the provider CareAgent's address given to patients (http, https, ws or wss URL)")
    .option('--public-key <key>', "the provider CareAgent's Ed25519 public key (43-char base64url)")
    .option('--notification-url <url>', 'http(s) URL that receives signed relationship notices')
    .option('--json', 'machine-readable output');
}

export function registerProvider(program: Command): void {
  const provider = program.command('provider').description('the provider roster: who patients can reach through this Neuron');
  registerAdd(provider);
  registerList(provider);
  registerShow(provider);
  registerUpdate(provider);
  registerApprove(provider);
  registerSuspend(provider);
  registerRemove(provider);
}

/** `neuron provider add` */
function registerAdd(provider: Command): void {
  fieldFlags(
    provider
      .command('add <npi>')
      .description('add a provider (pending until approved, unless --status active)')
      .requiredOption('--name <name>', "the provider's name as patients see it")
      .option('--status <status>', 'pending (default) or active'),
  ).action(async (npi: string, options: FieldOptions & { status?: string; json?: boolean }, command: Command) => {
    const input: CreateProviderInput = {
      npi,
      name: options.name ?? '',
      provider_types: options.types === undefined ? undefined : splitList(options.types),
      specialty: options.specialty,
      provider_endpoint: options.endpoint,
      provider_public_key: options.publicKey,
      notification_url: options.notificationUrl,
      status: options.status as 'pending' | 'active' | undefined,
    };
    // Every problem at once, before the database is opened (or created): nothing is written.
    const problems = providerFieldProblems(input, ['npi', 'name']);
    if (options.status !== undefined && options.status !== 'pending' && options.status !== 'active') {
      problems.push({ path: 'status', message: 'takes pending or active (approve issues the CareAgent credential)' });
    }
    if (problems.length > 0) throw invalidProvider(problems);
    const created = await withRoster(command, { create: true }, (service) => service.create(input, CLI_ACTOR));
    const view = toProviderView(created);
    if (options.json) return printJson(view);
    out(`${colours()('green', 'added')} provider ${view.npi} (${view.name}), ${paintStatus(view.status)}`);
    if (view.provider_endpoint === null) {
      process.stderr.write(
        `note: provider ${view.npi} has no endpoint (--endpoint), the address patients receive; it cannot be approved until it has one: \`neuron provider update ${view.npi} --endpoint wss://…\`\n`,
      );
    } else if (view.status === 'pending') {
      out(`Next: \`neuron provider approve ${view.npi}\` makes it active and issues its CareAgent credential.`);
    }
  });
}

/** `neuron provider list` */
function registerList(provider: Command): void {
  provider
    .command('list')
    .description('every provider on the roster')
    .option('--status <status>', `only ${PROVIDER_STATUSES.join(', ')}`)
    .option('--json', 'machine-readable output')
    .action(async (options: { status?: string; json?: boolean }, command: Command) => {
      if (options.status !== undefined && !(PROVIDER_STATUSES as readonly string[]).includes(options.status)) {
        throw new CliError(`--status takes one of ${PROVIDER_STATUSES.join(', ')}`, EXIT.USAGE);
      }
      const all = await withRoster(command, { create: false }, async (service) => {
        const items: Provider[] = [];
        let after: string | undefined;
        do {
          const page = await service.list({ after, limit: LIST_PAGE_SIZE, status: options.status as ProviderStatus | undefined });
          items.push(...page.items);
          after = page.next ?? undefined;
        } while (after !== undefined);
        return items.map(toProviderView);
      });
      if (options.json) return printJson(all);
      if (all.length === 0) {
        out('no providers; add one with `neuron provider add <npi> --name <name> --endpoint <url>`');
        return;
      }
      const paint = colours();
      out(paint('bold', `${'NPI'.padEnd(12)}${'STATUS'.padEnd(11)}${'NAME'.padEnd(28)}${'TYPES'.padEnd(22)}NOTICES`));
      for (const view of all) {
        const delivery = view.notification_url === null ? 'pull' : 'push';
        // Pad before painting so escape codes do not upset the columns.
        out(
          `${view.npi.padEnd(12)}${paintStatus(view.status)}${' '.repeat(Math.max(1, 11 - view.status.length))}${view.name.slice(0, 26).padEnd(28)}${view.provider_types.join(',').slice(0, 20).padEnd(22)}${delivery}`,
        );
      }
    });
}

/** `neuron provider show` */
function registerShow(provider: Command): void {
  provider
    .command('show <npi>')
    .description('one provider in full')
    .option('--json', 'machine-readable output')
    .action(async (npi: string, options: { json?: boolean }, command: Command) => {
      checkNpi(npi);
      const view = toProviderView(await withRoster(command, { create: false }, (service) => service.get(npi)));
      if (options.json) return printJson(view);
      printProvider(view);
    });
}

/** `neuron provider update` */
function registerUpdate(provider: Command): void {
  fieldFlags(
    provider
      .command('update <npi>')
      .description("change a provider's details")
      .option('--name <name>', "the provider's name")
      .option('--clear <fields>', `comma-separated fields to clear: ${Object.keys(CLEARABLE).join(', ')}`),
  ).action(async (npi: string, options: FieldOptions & { clear?: string; json?: boolean }, command: Command) => {
    checkNpi(npi);
    const change: UpdateProviderInput = {
      name: options.name,
      provider_types: options.types === undefined ? undefined : parseTypes(options.types),
      specialty: options.specialty,
      provider_endpoint: options.endpoint,
      provider_public_key: options.publicKey,
      notification_url: options.notificationUrl,
    };
    for (const field of (options.clear ?? '')
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean)) {
      const key = CLEARABLE[field];
      if (key === undefined) throw new CliError(`--clear takes ${Object.keys(CLEARABLE).join(', ')} (not: ${field})`, EXIT.USAGE);
      if (change[key] !== undefined) throw new CliError(`--${field} and --clear ${field} contradict each other`, EXIT.USAGE);
      (change as Record<string, unknown>)[key] = null;
    }
    if (Object.values(change).every((value) => value === undefined)) {
      throw new CliError(
        'nothing to change: pass at least one of --name, --types, --specialty, --endpoint, --public-key, --notification-url, --clear',
        EXIT.USAGE,
      );
    }
    const view = toProviderView(await withRoster(command, { create: false }, (service) => service.update(npi, change, CLI_ACTOR)));
    if (options.json) return printJson(view);
    out(`${colours()('green', 'updated')} provider ${view.npi}`);
    printProvider(view);
  });
}

/** `neuron provider approve` */
function registerApprove(provider: Command): void {
  provider
    .command('approve <npi>')
    .description('make a provider active and issue its CareAgent credential (printed once)')
    .option('--rotate', 'issue a new credential for a provider that is already active (the old one stops working)')
    .option('--json', 'machine-readable output')
    .action(async (npi: string, options: { rotate?: boolean; json?: boolean }, command: Command) => {
      checkNpi(npi);
      const { approval, neuronPublicKey } = await withRoster(command, { create: false }, async (service, key) => ({
        approval: await service.approve(npi, CLI_ACTOR, { rotate: options.rotate }),
        neuronPublicKey: key,
      }));
      const view = toProviderView(approval.provider);
      if (options.json) {
        return printJson({
          provider: view,
          credential: approval.credential,
          credential_id: approval.credentialId,
          registration_id: approval.registrationId,
          rotated: approval.rotated,
          neuron_public_key: neuronPublicKey,
        });
      }
      const paint = colours();
      out(
        `${paint('green', 'approved')} provider ${view.npi} (${view.name}) is ${paintStatus(view.status)}${approval.rotated ? '; the previous credential no longer works' : ''}`,
      );
      out('');
      out('  provider CareAgent credential (Authorization: Bearer …):');
      out(`  ${approval.credential}`);
      out(`  registration id: ${approval.registrationId ?? `unchanged (${view.registration_id_prefix ?? 'none'}…)`}`);
      out(`  Neuron public key (verifies notices and attestations): ${neuronPublicKey}`);
      out('');
      out(paint('yellow', 'Give it to the provider CareAgent now: this is the only time it is shown.'));
    });
}

/** `neuron provider suspend` */
function registerSuspend(provider: Command): void {
  provider
    .command('suspend <npi>')
    .description('suspend a provider: new handshakes to it are refused at once and its credential stops working')
    .option('--reason <text>', 'kept in the audit log (no patient data)')
    .option('--json', 'machine-readable output')
    .action(async (npi: string, options: { reason?: string; json?: boolean }, command: Command) => {
      checkNpi(npi);
      const view = toProviderView(
        await withRoster(command, { create: false }, (service) => service.suspend(npi, CLI_ACTOR, options.reason)),
      );
      if (options.json) return printJson(view);
      out(
        `${colours()('yellow', 'suspended')} provider ${view.npi} (${view.name}); \`neuron provider approve ${view.npi}\` reinstates it with a new credential`,
      );
    });
}

/** `neuron provider remove` */
function registerRemove(provider: Command): void {
  provider
    .command('remove <npi>')
    .description('remove a provider from the roster (its relationships are kept as history)')
    .option('--json', 'machine-readable output')
    .action(async (npi: string, options: { json?: boolean }, command: Command) => {
      checkNpi(npi);
      await withRoster(command, { create: false }, (service) => service.remove(npi, CLI_ACTOR));
      if (options.json) return printJson({ npi, removed: true });
      out(`${colours()('green', 'removed')} provider ${npi}`);
    });
}
