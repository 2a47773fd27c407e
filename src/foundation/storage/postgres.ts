/**
 * PostgreSQL storage (`storage.url = postgres://…`): a pool whose connection problems are told in
 * operator words (never with the password), BIGINT read as exact numbers, advisory locks across
 * instances. The driver is loaded only when a PostgreSQL URL is configured (docs/storage.md).
 */
// Type only: the driver is loaded when a PostgreSQL URL is configured (not on the default SQLite), to keep it out of idle memory.
import type pg from 'pg';
import { CompiledQuery, Kysely, PostgresDialect, sql } from 'kysely';
import type { Database } from './tables.ts';
import type { LockName, Storage } from './types.ts';
import type { StorageOptions } from './options.ts';
// The defaults of storage.* live with their reasons in the config schema, one number each.
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_WRITE_PROBE_INTERVAL_MS } from '../config/schema.ts';
import { buildStorage } from './engine.ts';
import { StorageError } from './failures.ts';

/** Idle pooled connections are closed after this long, so a quiet instance holds few server slots. */
const POOL_IDLE_TIMEOUT_MS = 30_000;

/** Named application locks; each maps to a stable PostgreSQL advisory lock key. */
const ADVISORY_LOCK_KEYS: Record<LockName | 'migrations', number> = {
  // Arbitrary but fixed: the same number on every instance serialises audit appends. Advisory
  // locks are per database (not per schema), so Neuron deployments sharing one database in
  // different schemas also share this lock; that only serialises, it never breaks anything.
  audit_chain: 0x4e_41_01,
  // Instances starting at once: one migrates, the others wait and find the work done.
  migrations: 0x4e_41_02,
};

/** Where a PostgreSQL URL points, without user or password, for messages and logs. */
interface PostgresTarget {
  /** `host:port/database` */
  where: string;
  /** Strings that must never appear in a message: the password, raw and decoded. */
  secrets: string[];
}

function parsePostgresUrl(raw: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // No cause: the URL parser's error carries the input, password included.
    throw new StorageError('storage.url is not a valid URL; expected postgres://user:password@host:5432/database');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new StorageError(
      `storage.url must start with postgres:// or postgresql:// (found ${url.protocol}//); leave it empty for the embedded SQLite file`,
    );
  }
  // A Unix socket directory may be given as ?host=/run/postgresql instead of a host name.
  const host = url.hostname !== '' ? url.hostname : (url.searchParams.get('host') ?? 'localhost');
  const port = url.port !== '' ? url.port : (url.searchParams.get('port') ?? '5432');
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username) || 'postgres';
  const secrets = [url.password, safeDecode(url.password)].filter((s) => s.length >= 1);
  return { where: `${host}:${port}/${database}`, secrets };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Why a connection failed, in operator words, never with the password. */
function connectionProblem(error: unknown, target: PostgresTarget, timeoutMs: number): string {
  const e = error as { code?: string; message?: string };
  const serverSaid = (e.message ?? String(error)).split('\n')[0] ?? '';
  let reason: string;
  switch (e.code) {
    case 'ECONNREFUSED':
      reason = 'connection refused (is PostgreSQL running and listening on that address and port?)';
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      reason = 'host name not found';
      break;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      reason = `no route or no answer (${e.code})`;
      break;
    case 'ECONNRESET':
      reason = 'the connection was reset (TLS required by the server, or a proxy in between?)';
      break;
    case '28P01':
      reason = 'password authentication failed';
      break;
    case '28000':
      reason = `the server refused the login: ${serverSaid}`;
      break;
    case '3D000':
      reason = 'the database does not exist';
      break;
    case '57P03':
      reason = 'the server is starting up, shutting down or in recovery';
      break;
    case '53300':
      reason = 'the server has no free connection slots (too many connections; lower storage.pool_max or raise max_connections)';
      break;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      reason = `the server's TLS certificate is not trusted (${e.code}); name the CA with sslrootcert=/path/ca.pem in the URL`;
      break;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      reason = "the server's TLS certificate does not name this host";
      break;
    default:
      if (/timeout/i.test(serverSaid)) reason = `no connection within ${timeoutMs} ms`;
      else if (/terminated unexpectedly/i.test(serverSaid)) reason = 'the connection was lost (server restarted or network cut)';
      else reason = serverSaid;
  }
  for (const secret of target.secrets) reason = reason.split(secret).join('***');
  return `cannot reach PostgreSQL at ${target.where}: ${reason}; check storage.url`;
}

/** Errors a connection attempt produces (rather than a query's own failure). */
function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (typeof e?.code === 'string') {
    // SQLSTATE classes 08 (connection), 28 (authorization), 3D000 (no database), 57P0x (shutdown, recovery), 53300 (too many connections).
    if (/^(08|28)/.test(e.code) || ['3D000', '57P01', '57P02', '57P03', '53300'].includes(e.code)) return true;
    if (/^E[A-Z]+$/.test(e.code) || /CERT|TLS/.test(e.code)) return true;
  }
  return /timeout|Connection terminated|connection error/i.test(e?.message ?? '');
}

/**
 * BIGINT (int8) values, such as outbox and audit sequence numbers and count(*), arrive as numbers.
 * They stay far below 2^53; one beyond it fails the query rather than silently losing precision.
 * Set per pool, not on pg's global type table, so nothing else in the process is affected.
 */
const INT8_OID = 20;
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new StorageError(`a BIGINT value ${text} is beyond JavaScript's exact integer range`);
  return value;
}
function postgresTypes(driver: typeof pg): pg.CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8_OID && format !== 'binary'
        ? parseInt8
        : driver.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
  };
}

export async function openPostgres(options: StorageOptions): Promise<Storage> {
  const target = parsePostgresUrl(options.url);
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const { default: driver } = await import('pg');
  const pool = new driver.Pool({
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
    // TCP keepalives keep firewalls and load balancers from silently dropping idle connections.
    keepAlive: true,
    application_name: 'neuron',
    types: postgresTypes(driver),
  });
  const reportBackground =
    options.onBackgroundError ?? ((error: StorageError) => process.emitWarning(error.message, 'NeuronStorageWarning'));
  // A connection that dies (server restart, failover, network cut) emits 'error' on its client.
  // Unheard, that event would crash the whole process. Idle clients: the pool forwards it here.
  pool.on('error', (error) =>
    reportBackground(
      new StorageError(`an idle PostgreSQL connection failed and will be replaced: ${connectionProblem(error, target, connectTimeoutMs)}`),
    ),
  );
  // Checked-out clients (a query or transaction in flight): the query in flight is rejected with
  // the same error, which reaches its caller; the pool discards the dead client on release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });

  // Connect once now, so a wrong URL, password or database fails at start with a clear message.
  let schema: string;
  try {
    const result = await pool.query<{ schema: string | null }>('SELECT current_schema() AS schema');
    const current = result.rows[0]?.schema ?? null;
    if (current === null) {
      throw new StorageError(
        `PostgreSQL at ${target.where} has no schema to create tables in: the schemas in search_path do not exist; create the schema or fix options=-c search_path=… in storage.url`,
      );
    }
    schema = current;
  } catch (error) {
    await pool.end().catch(() => undefined);
    if (error instanceof StorageError) throw error;
    throw new StorageError(connectionProblem(error, target, connectTimeoutMs));
  }

  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const schemaNote = schema === 'public' ? '' : ` (schema ${schema})`;
  return buildStorage(db, 'postgres', `PostgreSQL ${target.where}${schemaNote}`, {
    writeProbeIntervalMs: options.writeProbeIntervalMs ?? DEFAULT_WRITE_PROBE_INTERVAL_MS,
    begin: CompiledQuery.raw('BEGIN'),
    lock: async (trx, name) => {
      await sql`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_KEYS[name]})`.execute(trx);
    },
    migrationLock: async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_KEYS.migrations})`.execute(trx);
    },
    ping: async () => {
      try {
        await sql`SELECT 1`.execute(db);
      } catch (error) {
        if (isConnectionError(error)) throw new StorageError(connectionProblem(error, target, connectTimeoutMs));
        throw error;
      }
    },
    close: async () => {
      await db.destroy();
    },
  });
}
