/**
 * `neuron key rotate`: replaces the organization key (docs/security.md "Key rotation"). The old
 * key signs the new one, the new key signs the same statement, and both signatures are an audit
 * entry written in the transaction that makes the new key the active one; from its commit on,
 * tree heads, attestations and notices are signed with the new key. The pinned key in the data
 * directory stays the genesis key: verifiers follow the rotation entries from it.
 */
import type { Command } from 'commander';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import { pinGenesisKey, rotateOrganizationKey } from '../../domains/audit/index.ts';
import { cliAudit, globalOptions, loadForCli, openForCli } from '../context.ts';
import { CliError, EXIT, colours, out, printJson } from '../output.ts';

export function registerKey(program: Command): void {
  const key = program.command('key').description("the organization's Ed25519 signing key");
  key
    .command('rotate')
    .description('make a new organization key the active one; the old key signs it, and the rotation is an audit entry')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }, command: Command) => {
      const loaded = loadForCli(globalOptions(command));
      const storage = await openForCli(loaded, { mustExist: true, migrate: true });
      try {
        const { key: current } = await ensureOrganizationKey(storage.db);
        // Pinned before the rotation, so a data directory first used here pins the key the log began with.
        const { reachable } = await pinGenesisKey(storage.db, loaded.paths.dataDir, current);
        if (!reachable) {
          throw new CliError(
            'the active organization key is not the pinned one nor reached from it by a rotation in the audit log; run neuron audit verify before rotating',
            EXIT.FAILURE,
          );
        }
        const rotated = await rotateOrganizationKey({ storage, audit: cliAudit(storage, current), key: current, actor: 'cli' });
        if (options.json) {
          printJson({
            seq: rotated.seq,
            old_key: { id: rotated.previous.id, public_key: rotated.previous.publicKey },
            new_key: { id: rotated.next.id, public_key: rotated.next.publicKey },
          });
          return;
        }
        const paint = colours();
        out(`${paint('green', 'organization key rotated')} (audit entry ${rotated.seq})`);
        out(`  old key ${rotated.previous.id}  ${rotated.previous.publicKey}`);
        out(`  new key ${rotated.next.id}  ${rotated.next.publicKey}`);
        out('  A running Neuron signs with the new key from its next commit (at most audit.key_reload_interval_ms).');
        out('  Tell patients and providers who pin the key; witnesses follow the rotation entry by themselves.');
      } finally {
        await storage.close();
      }
    });
}
