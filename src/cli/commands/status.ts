import type { Command } from 'commander';
import { sql } from 'kysely';
import type { Storage } from '../../foundation/storage/index.ts';
import { globalOptions, loadForCli, openForCli } from '../context.ts';
import { EXIT, colours, out, printJson } from '../output.ts';
import { runningInstance } from '../pidfile.ts';
import { readRegistryStatus, type RegistryStatusView } from '../../network/presence/index.ts';
import { formatRegistryStatus } from './registry.ts';

/** How long status waits for the running instance's readiness answer. */
const READY_PROBE_TIMEOUT_MS = 2_000;

export interface DatabaseCounts {
  providers: Record<string, number>;
  relationships: Record<string, number>;
  patients: number;
  blocked_patients: number;
  outbox: Record<string, number>;
  audit_entries: number;
}

export async function databaseCounts(storage: Storage): Promise<DatabaseCounts> {
  const db = storage.db;
  const grouped = async (table: 'providers' | 'relationships' | 'outbox'): Promise<Record<string, number>> => {
    const rows = await db
      .selectFrom(table)
      .select(['status', sql<number>`count(*)`.as('n')])
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
  };
  const count = async (table: 'patients' | 'blocks' | 'audit_log'): Promise<number> => {
    const row = await db.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirst();
    return Number(row?.n ?? 0);
  };
  return {
    providers: await grouped('providers'),
    relationships: await grouped('relationships'),
    patients: await count('patients'),
    blocked_patients: await count('blocks'),
    outbox: await grouped('outbox'),
    audit_entries: await count('audit_log'),
  };
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('is the Neuron running, since when, where, and what it holds')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }, command: Command) => {
      const loaded = loadForCli(globalOptions(command));
      const running = runningInstance(loaded.paths.pidFile);
      let ready: boolean | null = null;
      if (running) {
        try {
          const response = await fetch(`${running.url}/health/ready`, { signal: AbortSignal.timeout(READY_PROBE_TIMEOUT_MS) });
          ready = response.ok;
        } catch {
          ready = false;
        }
      }
      let counts: DatabaseCounts | null = null;
      let registry: RegistryStatusView | null = null;
      try {
        const storage = await openForCli(loaded, { mustExist: true, migrate: false });
        try {
          counts = await databaseCounts(storage);
          // From the database: the running instance (or another one) keeps it up to date.
          registry = await readRegistryStatus(storage, loaded.config);
        } finally {
          await storage.close();
        }
      } catch {
        counts = null;
      }
      const uptimeSeconds = running ? Math.round((Date.now() - Date.parse(running.startedAt)) / 1000) : null;
      const status = {
        running: running !== null,
        ready,
        pid: running?.pid ?? null,
        started_at: running?.startedAt ?? null,
        uptime_seconds: uptimeSeconds,
        url: running?.url ?? null,
        handshake_url: running?.handshakeUrl ?? null,
        organization: { name: loaded.config.organization.name, npi: loaded.config.organization.npi },
        data_dir: loaded.paths.dataDir,
        counts,
        registry,
      };
      if (options.json) printJson(status);
      else {
        const paint = colours();
        out(
          running
            ? `${paint('green', 'running')} (pid ${running.pid}, up ${formatUptime(uptimeSeconds ?? 0)}, ${ready ? 'ready' : paint('yellow', 'not ready')})`
            : paint('yellow', 'not running'),
        );
        out(`  organization  ${status.organization.name} (NPI ${status.organization.npi})`);
        if (running) {
          out(`  REST API      ${running.url}`);
          out(`  handshake     ${running.handshakeUrl}`);
        }
        out(`  data          ${status.data_dir}`);
        if (counts) {
          out(`  providers     ${formatGroups(counts.providers)}`);
          out(`  relationships ${formatGroups(counts.relationships)}`);
          out(`  patients      ${counts.patients} (${counts.blocked_patients} blocked)`);
          out(`  outbox        ${formatGroups(counts.outbox)}`);
          out(`  audit log     ${counts.audit_entries} entries`);
        }
        if (registry) for (const line of formatRegistryStatus(registry, { providers: 'summary' })) out(`  ${line}`);
      }
      if (!running) process.exitCode = EXIT.NOT_RUNNING;
    });
}

function formatGroups(groups: Record<string, number>): string {
  const entries = Object.entries(groups);
  return entries.length === 0 ? 'none' : entries.map(([name, n]) => `${n} ${name}`).join(', ');
}

function formatUptime(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}
