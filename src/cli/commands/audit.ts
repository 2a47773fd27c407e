import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  latestTreeHead,
  parseTreeHead,
  trustFromDataDir,
  verifyAuditLog,
  type AuditTrust,
  type TreeHead,
  type VerifyResult,
} from '../../domains/audit/index.ts';
import { globalOptions, loadForCli, openForCli } from '../context.ts';
import { CliError, EXIT, colours, out, printJson } from '../output.ts';

/** The result as the JSON every other command prints: snake_case. */
function verifyJson(result: VerifyResult): Record<string, unknown> {
  return {
    ok: result.ok,
    entries: result.entries,
    checkpoints: result.checkpoints,
    tree_heads: result.treeHeads,
    first_bad_seq: result.firstBadSeq,
    bad_tree_head: result.badTreeHead,
    problem: result.problem,
  };
}

/** A tree head saved by a witness (GET /v1/audit/tree-head) or taken from a receipt (its tree_head). */
function readTreeHeadFile(file: string): { head: TreeHead; source: string } {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (error) {
    throw new CliError(`--tree-head ${file}: ${(error as Error).message}`, EXIT.USAGE);
  }
  const holder = value as { tree_head?: unknown } | null;
  try {
    return {
      head: parseTreeHead(holder !== null && typeof holder === 'object' && 'tree_head' in holder ? holder.tree_head : value),
      source: file,
    };
  } catch (error) {
    throw new CliError(`--tree-head ${file}: ${(error as Error).message}`, EXIT.USAGE);
  }
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log (a transparency log)');
  registerVerify(audit);
  registerMonitor(audit);
  registerTreeHead(audit);
}

function registerVerify(audit: Command): void {
  audit
    .command('verify')
    .description(
      'check every hash link, every signed tree head (with the key pinned in the data directory) and consistency with the tree-head file and every --tree-head given',
    )
    .option(
      '--tree-head <file>',
      'a tree head saved earlier (JSON as GET /v1/audit/tree-head serves it, or a receipt); repeatable',
      (file: string, files: string[]) => [...files, file],
      [] as string[],
    )
    .option('--json', 'machine-readable output')
    .action(verifyAuditCommand);
}

/** `neuron audit verify`: the whole chain, every signed tree head and checkpoint, against the pinned key and the given tree heads. */
async function verifyAuditCommand(options: { json?: boolean; treeHead: string[] }, command: Command): Promise<void> {
  const loaded = loadForCli(globalOptions(command));
  const given = options.treeHead.map(readTreeHeadFile);
  let trust: AuditTrust;
  try {
    // On SQLite every writer keeps this one file; on PostgreSQL it holds this directory's own heads (AuditTrust.file).
    const scope = loaded.config.storage.url === '' ? ('every' as const) : ('own' as const);
    trust = trustFromDataDir(loaded.paths.dataDir, given, { graceMs: loaded.config.audit.tree_head_file_grace_ms, scope });
  } catch (error) {
    throw new CliError(`cannot read the audit trust files: ${(error as Error).message}`, EXIT.AUDIT_FAILED);
  }
  const storage = await openForCli(loaded, { mustExist: true, migrate: false });
  try {
    const result =
      trust.trustedKeys.size === 0
        ? {
            ok: false,
            entries: 0,
            checkpoints: 0,
            treeHeads: 0,
            firstBadSeq: null,
            badTreeHead: null,
            problem:
              'no organization key is pinned in the data directory (organization-key.json); start the Neuron once, or restore the file from a backup',
          }
        : await verifyAuditLog(storage.db, trust);
    printVerifyResult(result, options.json === true);
    if (!result.ok) process.exitCode = EXIT.AUDIT_FAILED;
  } finally {
    await storage.close();
  }
}

function printVerifyResult(result: VerifyResult, json: boolean): void {
  const paint = colours();
  if (json) printJson(verifyJson(result));
  else if (result.ok)
    out(
      `${paint('green', 'audit log intact')}: ${result.entries} entries, ${result.treeHeads} signed tree heads, ${result.checkpoints} signed checkpoints`,
    );
  else {
    const where =
      result.firstBadSeq !== null
        ? ` at sequence ${result.firstBadSeq}`
        : result.badTreeHead !== null
          ? ` at the tree head of size ${result.badTreeHead}`
          : '';
    out(`${paint('red', 'audit log verification FAILED')}${where}: ${result.problem}`);
    out(`  ${result.entries} entries before it verified; restore the database from a backup and investigate who changed it`);
  }
}

function registerMonitor(audit: Command): void {
  audit
    .command('monitor <url>')
    .description(
      "watch a Neuron's audit log: check its signed tree head under the key pinned on the first run and that it extends the one kept last time; non-zero on a fork, a truncation or a bad signature",
    )
    .option('--state <file>', 'where the pinned key and the last tree head are kept', 'neuron-audit-monitor.json')
    .option('--every <seconds>', 'poll at this interval instead of checking once', (text: string) => {
      const seconds = Number(text);
      // At least one second between polls: the tree head changes at most once per commit anyway.
      if (!Number.isInteger(seconds) || seconds < 1)
        throw new CliError(`--every must be a whole number of seconds, at least 1 (got ${text})`, EXIT.USAGE);
      return seconds;
    })
    .action(async (url: string, options: { state: string; every?: number }) => {
      const { monitorOnce } = await import('../../domains/audit/monitor.ts');
      for (;;) {
        const outcome = await monitorOnce({ baseUrl: url, stateFile: options.state });
        const paint = colours();
        if (outcome.ok) out(`${paint('green', 'ok')}: ${outcome.message}`);
        else {
          out(
            `${paint('red', outcome.kind === 'unreachable' ? 'could not check' : `AUDIT LOG ${outcome.kind.toUpperCase()}`)}: ${outcome.message}`,
          );
          // Both 1: the message tells a fork, a truncation or a bad signature from an unreachable Neuron.
          process.exitCode = outcome.kind === 'unreachable' ? EXIT.FAILURE : EXIT.AUDIT_FAILED;
          if (outcome.kind !== 'unreachable') return;
        }
        if (options.every === undefined) return;
        await new Promise((resolve) => setTimeout(resolve, options.every! * 1000));
      }
    });
}

function registerTreeHead(audit: Command): void {
  audit
    .command('tree-head')
    .description('print the current signed tree head as JSON (as GET /v1/audit/tree-head serves it), for a witness to keep')
    .action(async (_options: unknown, command: Command) => {
      const storage = await openForCli(loadForCli(globalOptions(command)), { mustExist: true, migrate: false });
      try {
        const head = await latestTreeHead(storage.db);
        if (head === null) throw new CliError('the audit log has no signed tree head yet; start the Neuron once', EXIT.FAILURE);
        printJson(head);
      } finally {
        await storage.close();
      }
    });
}
