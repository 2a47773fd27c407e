import type { Command } from 'commander';
import { verifyAuditChain } from '../../audit/index.ts';
import { globalOptions, loadForCli, openForCli } from '../context.ts';
import { EXIT, colours, out, printJson } from '../output.ts';

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('check every hash link and every signed checkpoint; prints the first bad sequence number')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }, command: Command) => {
      const storage = await openForCli(loadForCli(globalOptions(command)), { mustExist: true, migrate: false });
      try {
        const result = await verifyAuditChain(storage.db);
        const paint = colours();
        if (options.json) printJson(result);
        else if (result.ok) out(`${paint('green', 'audit log intact')}: ${result.entries} entries, ${result.checkpoints} signed checkpoints`);
        else {
          out(`${paint('red', 'audit log verification FAILED')} at sequence ${result.firstBadSeq}: ${result.problem}`);
          out(`  ${result.entries} entries before it verified; restore the database from a backup and investigate who changed it`);
        }
        if (!result.ok) process.exitCode = EXIT.AUDIT_FAILED;
      } finally {
        await storage.close();
      }
    });
}
