/**
 * `neuron block add|remove|list`: blocking patient agents from the command line, through the same
 * service the REST API uses (src/domains/blocks/service.ts), so a block is the same one transaction: the
 * block, the agent's active relationships suspended, the `patient.blocked` webhook queued and the
 * audit entry (actor `cli`). A running Neuron reads blocks on every handshake, so it counts from
 * the next one.
 *
 * Exit codes: 0 done; 2 bad input (nothing written); 1 anything else (already blocked, not
 * blocked, database trouble).
 */
import type { Command } from 'commander';
import { BlockService } from '../../domains/blocks/service.ts';
import { RelationshipService } from '../../domains/relationships/index.ts';
import type { Block } from '../../domains/blocks/store.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import { cliAudit, globalOptions, loadForCli, openForCli } from '../context.ts';
import { CliError, EXIT, colours, out, printJson } from '../output.ts';

/** Blocks read per page while printing them all. */
const LIST_PAGE_SIZE = 200;
/** The REST API's bounds (src/foundation/rest/schemas.ts: PatientAgentId and the reason's text(500)). */
const AGENT_ID_MAX_CHARS = 256;
const REASON_MAX_CHARS = 500;
const BLOCK_ACTOR = { actor: 'cli', keyId: undefined };

/** Every problem with the arguments, as the REST API checks them. */
function blockProblems(patientAgentId: string, reason: string | undefined): string[] {
  const problems: string[] = [];
  if (patientAgentId.length === 0 || patientAgentId.length > AGENT_ID_MAX_CHARS || !/^[\x21-\x7E]+$/.test(patientAgentId)) {
    problems.push(`<patient_agent_id> must be 1 to ${AGENT_ID_MAX_CHARS} printable ASCII characters without spaces`);
  }
  if (reason !== undefined && (reason.length === 0 || reason.length > REASON_MAX_CHARS || /[\u0000-\u001F\u007F]/.test(reason))) {
    problems.push(`--reason must be text of 1 to ${REASON_MAX_CHARS} characters without control characters`);
  }
  return problems;
}

function checked(patientAgentId: string, reason?: string): void {
  const problems = blockProblems(patientAgentId, reason);
  if (problems.length > 0) throw new CliError(`invalid block:\n${problems.map((p) => `  - ${p}`).join('\n')}`, EXIT.USAGE);
}

async function withBlocks<T>(command: Command, work: (service: BlockService) => Promise<T>): Promise<T> {
  const loaded = loadForCli(globalOptions(command));
  // A block may be made before the Neuron's first start (a known bad agent id), like a provider.
  const storage = await openForCli(loaded, { mustExist: false, migrate: true });
  try {
    const { key } = await ensureOrganizationKey(storage.db);
    // cliAudit: entries written here are sealed into the tree-head file too, like the server's.
    const audit = cliAudit(storage, key);
    // The same pair the server builds (composition/services.ts): a block suspends the agent's relationships.
    const relationships: RelationshipService = new RelationshipService({
      storage,
      audit,
      isPatientBlocked: (trx, id) => blocks.isBlocked(trx, id),
    });
    const blocks = new BlockService({ storage, audit, relationships });
    return await work(blocks);
  } catch (error) {
    if (error instanceof NeuronError) throw new CliError(error.message, error.code === 'VALIDATION_FAILED' ? EXIT.USAGE : EXIT.FAILURE);
    throw error;
  } finally {
    await storage.close();
  }
}

function blockView(block: Block): Record<string, unknown> {
  return { patient_agent_id: block.patientAgentId, reason: block.reason, blocked_by: block.blockedBy, created_at: block.createdAt };
}

export function registerBlock(program: Command): void {
  const block = program.command('block').description('blocked patient agents: their handshakes are refused');

  block
    .command('add <patient_agent_id>')
    .description('block a patient agent: its handshakes are refused and its active relationships suspended')
    .requiredOption('--reason <text>', 'why; kept in the audit log and sent in the patient.blocked webhook (no patient data)')
    .option('--json', 'machine-readable output')
    .action(async (patientAgentId: string, options: { reason: string; json?: boolean }, command: Command) => {
      checked(patientAgentId, options.reason);
      const result = await withBlocks(command, (service) => service.block(patientAgentId, options.reason, BLOCK_ACTOR));
      if (options.json) return printJson({ ...blockView(result.block), suspended_relationship_ids: result.suspendedRelationshipIds });
      const suspended = result.suspendedRelationshipIds.length;
      out(
        `${colours()('yellow', 'blocked')} patient agent ${patientAgentId}; ${suspended} active relationship${suspended === 1 ? '' : 's'} suspended`,
      );
    });

  block
    .command('remove <patient_agent_id>')
    .description('remove a block (relationships it suspended stay suspended until resumed)')
    .option('--json', 'machine-readable output')
    .action(async (patientAgentId: string, options: { json?: boolean }, command: Command) => {
      checked(patientAgentId);
      await withBlocks(command, (service) => service.unblock(patientAgentId, BLOCK_ACTOR));
      if (options.json) return printJson({ patient_agent_id: patientAgentId, removed: true });
      out(
        `${colours()('green', 'unblocked')} patient agent ${patientAgentId}; relationships the block suspended stay suspended until resumed`,
      );
    });

  block
    .command('list')
    .description('every blocked patient agent')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }, command: Command) => {
      const all = await withBlocks(command, async (service) => {
        const items: Block[] = [];
        let after: string | undefined;
        do {
          const page = await service.list({ after, limit: LIST_PAGE_SIZE });
          items.push(...page.items);
          after = page.next ?? undefined;
        } while (after !== undefined);
        return items;
      });
      if (options.json) return printJson(all.map(blockView));
      if (all.length === 0) return out('no blocked patient agents');
      out(colours()('bold', `${'PATIENT AGENT'.padEnd(40)}${'SINCE'.padEnd(26)}${'BY'.padEnd(12)}REASON`));
      for (const item of all)
        out(`${item.patientAgentId.padEnd(40)}${item.createdAt.padEnd(26)}${item.blockedBy.padEnd(12)}${item.reason ?? ''}`);
    });
}
