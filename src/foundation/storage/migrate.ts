/**
 * Applies the schema migrations, on both dialects, safely when several instances start at once.
 *
 * One transaction does everything: take the migration lock (the write lock, BEGIN IMMEDIATE, on
 * SQLite; a transaction-level advisory lock on PostgreSQL), create the bookkeeping table if it is
 * missing, read which steps ran, run the missing ones in order, record them, commit. An instance
 * that waited for the lock then finds the work done. A step that fails rolls back every step of
 * the run, so the schema is never half-migrated (both dialects have transactional DDL).
 *
 * The bookkeeping table is kysely's (`kysely_migration`: name, timestamp), so databases migrated
 * by kysely's own Migrator carry on. We do not use that Migrator: it lists the tables of every
 * schema in the database to decide whether its table exists, which mistakes another schema's
 * table for ours and fails when another schema changes at the same moment.
 *
 * The table is looked up and created in the connection's current schema (the first one in
 * search_path on PostgreSQL), beside the Neuron's tables.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import type { Db, Dialect } from './types.ts';

export const MIGRATION_TABLE = 'kysely_migration';

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

interface MigrationContext {
  dialect: Dialect;
  migrations: Readonly<Record<string, Migration>>;
  /** Runs `work` in one transaction holding the migration lock. */
  exclusive<T>(work: (trx: Db) => Promise<T>): Promise<T>;
}

async function tableExists(db: Db, dialect: Dialect): Promise<boolean> {
  if (dialect === 'postgres') {
    // to_regclass resolves through search_path, like the unqualified names in the migrations.
    const result = await sql<{ found: string | null }>`SELECT to_regclass(${MIGRATION_TABLE})::text AS found`.execute(db);
    return result.rows[0]?.found != null;
  }
  const result = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ${MIGRATION_TABLE}`.execute(db);
  return result.rows.length > 0;
}

async function executed(db: Db, dialect: Dialect): Promise<string[]> {
  if (!(await tableExists(db, dialect))) return [];
  const result = await sql<{ name: string }>`SELECT name FROM ${sql.table(MIGRATION_TABLE)} ORDER BY name`.execute(db);
  return result.rows.map((row) => row.name);
}

/** Names in order; refuses a database that ran steps this code does not know (a newer version). */
function plan(known: string[], done: string[]): string[] {
  const unknown = done.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new MigrationError(
      `the database was migrated by a newer Neuron (unknown steps: ${unknown.join(', ')}); run that version or newer`,
    );
  }
  return known.filter((name) => !done.includes(name));
}

export async function pendingMigrations(db: Db, context: Omit<MigrationContext, 'exclusive'>): Promise<string[]> {
  return plan(Object.keys(context.migrations).sort(), await executed(db, context.dialect));
}

export async function runMigrations(context: MigrationContext): Promise<string[]> {
  const known = Object.keys(context.migrations).sort();
  return context.exclusive(async (trx) => {
    await sql`CREATE TABLE IF NOT EXISTS ${sql.table(MIGRATION_TABLE)} (
      name VARCHAR(255) NOT NULL PRIMARY KEY,
      timestamp VARCHAR(255) NOT NULL
    )`.execute(trx);
    const pending = plan(known, await executed(trx, context.dialect));
    for (const name of pending) {
      try {
        await context.migrations[name]!.up(trx as unknown as Kysely<unknown>);
      } catch (error) {
        throw new MigrationError(`migration ${name} failed: ${(error as Error).message}`, { cause: error });
      }
      await sql`INSERT INTO ${sql.table(MIGRATION_TABLE)} (name, timestamp) VALUES (${name}, ${new Date().toISOString()})`.execute(trx);
    }
    return pending;
  });
}
