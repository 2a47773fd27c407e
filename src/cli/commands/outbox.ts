/**
 * `neuron outbox list|retry`: what is waiting, delivered or dead in the outbox, and putting a dead
 * letter back in the queue. A running Neuron's worker picks a retried notice up at its next poll.
 * Registered by src/cli/main.ts.
 */
import type { Command } from 'commander';
import { globalOptions, loadForCli, openForCli, cliAudit } from '../context.ts';
import { CliError, EXIT, colours, out, printJson } from '../output.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import { listNotices, requeueNotice, toOutboxView, type OutboxStatus, type OutboxView } from '../../domains/outbox/index.ts';

const STATUSES: readonly OutboxStatus[] = ['pending', 'delivered', 'dead'];
/** Default number of notices listed; the oldest first. */
const DEFAULT_LIST_LIMIT = 50;
/** Most notices one list prints. */
const MAX_LIST_LIMIT = 1_000;

function paintStatus(status: OutboxStatus): string {
  const paint = colours();
  return status === 'delivered' ? paint('green', status) : status === 'dead' ? paint('red', status) : paint('yellow', status);
}

function printNotice(view: OutboxView): void {
  const paint = colours();
  out(`${view.event_id}  ${paintStatus(view.status)}  ${view.kind} -> ${view.target}  attempts ${view.attempts}`);
  const when =
    view.status === 'delivered'
      ? `delivered ${view.delivered_at}`
      : view.status === 'pending'
        ? `next attempt ${view.next_attempt_at}`
        : `created ${view.created_at}`;
  out(`    ${paint('dim', when)}${view.last_error ? `  last error: ${view.last_error}` : ''}`);
}

export function registerOutbox(program: Command): void {
  const outbox = program.command('outbox').description('notices to provider CareAgents and webhook subscribers, and dead letters');

  outbox
    .command('list')
    .description('notices in the outbox, oldest first (default: dead letters)')
    .option('--status <status>', `${STATUSES.join(', ')} or all`, 'dead')
    .option('--limit <n>', `how many (1-${MAX_LIST_LIMIT})`, String(DEFAULT_LIST_LIMIT))
    .option('--json', 'machine-readable output')
    .action(async (options: { status: string; limit: string; json?: boolean }, command: Command) => {
      if (options.status !== 'all' && !(STATUSES as readonly string[]).includes(options.status)) {
        throw new CliError(`--status takes ${STATUSES.join(', ')} or all`, EXIT.USAGE);
      }
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
        throw new CliError(`--limit takes a whole number from 1 to ${MAX_LIST_LIMIT}`, EXIT.USAGE);
      const storage = await openForCli(loadForCli(globalOptions(command)), { mustExist: true, migrate: false });
      try {
        const page = await listNotices(storage, { status: options.status === 'all' ? undefined : (options.status as OutboxStatus), limit });
        const views = page.items.map(toOutboxView);
        if (options.json) return printJson(views);
        if (views.length === 0) out(options.status === 'dead' ? 'no dead letters' : 'no notices');
        for (const view of views) printNotice(view);
        if (page.next !== null) out(colours()('dim', `(more than ${limit}; raise --limit to see more)`));
      } finally {
        await storage.close();
      }
    });

  outbox
    .command('retry <event_id>')
    .description('deliver a dead (or delivered) notice again, with a fresh attempt budget')
    .option('--json', 'machine-readable output')
    .action(async (eventId: string, options: { json?: boolean }, command: Command) => {
      const storage = await openForCli(loadForCli(globalOptions(command)), { mustExist: true, migrate: false });
      try {
        const { key } = await ensureOrganizationKey(storage.db);
        const audit = cliAudit(storage, key);
        const view = toOutboxView(await requeueNotice(storage, audit, eventId, 'cli'));
        if (options.json) return printJson(view);
        out(`${colours()('green', 'queued')} ${view.event_id} for delivery again; a running Neuron sends it at its next poll`);
      } catch (error) {
        if (error instanceof NeuronError) throw new CliError(error.message, EXIT.FAILURE);
        throw error;
      } finally {
        await storage.close();
      }
    });
}
