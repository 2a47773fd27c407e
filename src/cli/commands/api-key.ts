/**
 * `neuron api-key create|list|revoke`: API keys from the command line, through the same service
 * the REST API uses (src/domains/api-keys/service.ts). Works whether or not the Neuron is running; a
 * revocation takes effect on the key's next request, since the server reads the key's row on
 * every request.
 */
import type { Command } from 'commander';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import { ApiKeyService, type ApiKeyView } from '../../domains/api-keys/service.ts';
import { LABEL_PATTERN } from '../../domains/api-keys/format.ts';
import { SCOPES, type Scope } from '../../foundation/rest/principal.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import type { Storage } from '../../foundation/storage/index.ts';
import { globalOptions, loadForCli, openForCli, parseDuration, cliAudit } from '../context.ts';
import { CliError, EXIT, colours, out, printJson } from '../output.ts';

/** Keys listed per page read from the database while printing them all. */
const LIST_PAGE_SIZE = 200;

async function withService<T>(command: Command, mustExist: boolean, work: (service: ApiKeyService) => Promise<T>): Promise<T> {
  // Creating the first key may create the database (as `neuron init` would); listing and revoking need one.
  const storage: Storage = await openForCli(loadForCli(globalOptions(command)), { mustExist, migrate: !mustExist });
  try {
    const { key } = await ensureOrganizationKey(storage.db);
    const audit = cliAudit(storage, key);
    return await work(new ApiKeyService({ storage, audit }));
  } catch (error) {
    if (error instanceof NeuronError) throw new CliError(error.message, error.code === 'VALIDATION_FAILED' ? EXIT.USAGE : EXIT.FAILURE);
    throw error;
  } finally {
    await storage.close();
  }
}

function parseScopes(text: string): Scope[] {
  const scopes = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || unknown.length > 0) {
    throw new CliError(
      `--scopes takes a comma-separated list of ${SCOPES.join(', ')}${unknown.length > 0 ? ` (not: ${unknown.join(', ')})` : ''}`,
      EXIT.USAGE,
    );
  }
  return scopes as Scope[];
}

function printKey(view: ApiKeyView): void {
  const paint = colours();
  const state = view.status === 'active' ? paint('green', 'active') : paint('yellow', view.status);
  out(`${view.id}  ${view.label}  [${view.scopes.join(',')}]  ${state}`);
  out(
    `    created ${view.created_at}  expires ${view.expires_at ?? 'never'}  last used ${view.last_used_at ?? 'never'}${view.revoked_at ? `  revoked ${view.revoked_at}` : ''}`,
  );
}

export function registerApiKey(program: Command): void {
  const apiKey = program.command('api-key').description('API keys for third-party apps (REST API)');

  apiKey
    .command('create')
    .description('create a key; it is printed once and cannot be shown again')
    .requiredOption('--label <label>', 'who uses it, for example booking-app (audit actor api-key:<label>)')
    .requiredOption('--scopes <scopes>', 'comma-separated: read, write, admin (admin implies write implies read)')
    .option('--expires <duration>', 'lifetime, for example 90d or 12h (default: no expiry)')
    .option('--json', 'machine-readable output')
    .action(async (options: { label: string; scopes: string; expires?: string; json?: boolean }, command: Command) => {
      if (!new RegExp(LABEL_PATTERN).test(options.label)) {
        throw new CliError('--label takes 1 to 64 letters, digits and . _ @ -, starting with a letter or digit', EXIT.USAGE);
      }
      const scopes = parseScopes(options.scopes);
      const expiresAt = options.expires === undefined ? null : new Date(Date.now() + parseDuration(options.expires)).toISOString();
      const { key, view } = await withService(command, false, (service) =>
        service.create({ label: options.label, scopes, expiresAt, actor: 'cli' }),
      );
      if (options.json) {
        printJson({ ...view, key });
        return;
      }
      const paint = colours();
      out(
        `${paint('green', 'created')} API key ${view.id} (${view.label}, ${view.scopes.join(',')}${view.expires_at ? `, expires ${view.expires_at}` : ''})`,
      );
      out('');
      out(`  ${key}`);
      out('');
      out(paint('yellow', 'Store it now: this is the only time it is shown.'));
    });

  apiKey
    .command('list')
    .description('every key with its scopes, state and last use (never the key itself)')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }, command: Command) => {
      const keys = await withService(command, true, async (service) => {
        const all: ApiKeyView[] = [];
        let after: string | undefined;
        do {
          const page = await service.list({ after, limit: LIST_PAGE_SIZE });
          all.push(...page.items);
          after = page.next ?? undefined;
        } while (after !== undefined);
        return all;
      });
      if (options.json) printJson(keys);
      else if (keys.length === 0) out('no API keys; create one with `neuron api-key create --label <label> --scopes read`');
      else keys.forEach(printKey);
    });

  apiKey
    .command('revoke <id>')
    .description('revoke a key by its id; refused from its next request on, also by a running Neuron')
    .option('--json', 'machine-readable output')
    .action(async (id: string, options: { json?: boolean }, command: Command) => {
      const view = await withService(command, true, (service) => service.revoke(id, 'cli'));
      if (options.json) printJson(view);
      else out(`${colours()('green', 'revoked')} API key ${view.id} (${view.label})`);
    });
}
