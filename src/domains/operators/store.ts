/**
 * Operator and session rows (migration 006). Sessions are found by the SHA-256 of their token;
 * the token itself only ever exists in the operator's cookie.
 */
import type { Db } from '../../foundation/storage/index.ts';
import type { OperatorsTable } from '../../foundation/storage/tables.ts';
import type { OperatorRole } from './schemas.ts';

export interface OperatorRecord {
  name: string;
  role: OperatorRole;
  passwordHash: string;
  failedSignins: number;
  lockedUntil: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface SessionRecord {
  tokenDigest: string;
  operatorName: string;
  role: OperatorRole;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

function toOperator(row: OperatorsTable): OperatorRecord {
  return {
    name: row.name,
    role: row.role,
    passwordHash: row.password_hash,
    failedSignins: row.failed_signins,
    lockedUntil: row.locked_until,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function getOperator(db: Db, name: string): Promise<OperatorRecord | null> {
  const row = await db.selectFrom('operators').selectAll().where('name', '=', name).executeTakeFirst();
  return row ? toOperator(row) : null;
}

export async function listOperators(db: Db): Promise<OperatorRecord[]> {
  return (await db.selectFrom('operators').selectAll().orderBy('name', 'asc').execute()).map(toOperator);
}

export async function countOperators(db: Db): Promise<number> {
  const row = await db
    .selectFrom('operators')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function insertOperator(db: Db, record: OperatorRecord): Promise<void> {
  await db
    .insertInto('operators')
    .values({
      name: record.name,
      role: record.role,
      password_hash: record.passwordHash,
      failed_signins: record.failedSignins,
      locked_until: record.lockedUntil,
      created_at: record.createdAt,
      updated_at: record.updatedAt,
    })
    .execute();
}

/** Deletes the operator and, by cascade, every session of theirs. False when there was none. */
export async function deleteOperator(db: Db, name: string): Promise<boolean> {
  await db.deleteFrom('operator_sessions').where('operator_name', '=', name).execute();
  const result = await db.deleteFrom('operators').where('name', '=', name).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

/** A new password: clears failures and lockout. */
export async function setPassword(db: Db, name: string, passwordHash: string, at: string): Promise<boolean> {
  const result = await db
    .updateTable('operators')
    .set({ password_hash: passwordHash, failed_signins: 0, locked_until: null, updated_at: at })
    .where('name', '=', name)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function setSigninState(db: Db, name: string, failedSignins: number, lockedUntil: string | null): Promise<void> {
  await db.updateTable('operators').set({ failed_signins: failedSignins, locked_until: lockedUntil }).where('name', '=', name).execute();
}

export async function insertSession(db: Db, session: Omit<SessionRecord, 'role'>): Promise<void> {
  await db
    .insertInto('operator_sessions')
    .values({
      token_digest: session.tokenDigest,
      operator_name: session.operatorName,
      created_at: session.createdAt,
      last_seen_at: session.lastSeenAt,
      expires_at: session.expiresAt,
    })
    .execute();
}

/** The session with its operator's current role (a role change applies at once). */
export async function getSession(db: Db, tokenDigest: string): Promise<SessionRecord | null> {
  const row = await db
    .selectFrom('operator_sessions')
    .innerJoin('operators', 'operators.name', 'operator_sessions.operator_name')
    .select([
      'operator_sessions.token_digest',
      'operator_sessions.operator_name',
      'operator_sessions.created_at',
      'operator_sessions.last_seen_at',
      'operator_sessions.expires_at',
      'operators.role',
    ])
    .where('operator_sessions.token_digest', '=', tokenDigest)
    .executeTakeFirst();
  if (!row) return null;
  return {
    tokenDigest: row.token_digest,
    operatorName: row.operator_name,
    role: row.role,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
  };
}

export async function touchSession(db: Db, tokenDigest: string, at: string): Promise<void> {
  await db.updateTable('operator_sessions').set({ last_seen_at: at }).where('token_digest', '=', tokenDigest).execute();
}

/** False when the session was already gone. */
export async function deleteSession(db: Db, tokenDigest: string): Promise<boolean> {
  const result = await db.deleteFrom('operator_sessions').where('token_digest', '=', tokenDigest).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

export async function deleteSessionsOf(db: Db, name: string): Promise<number> {
  const result = await db.deleteFrom('operator_sessions').where('operator_name', '=', name).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Sessions past their absolute end or idle since before `idleSince`, removed in passing. */
export async function deleteEndedSessions(db: Db, now: string, idleSince: string): Promise<void> {
  await db
    .deleteFrom('operator_sessions')
    .where((eb) => eb.or([eb('expires_at', '<=', now), eb('last_seen_at', '<=', idleSince)]))
    .execute();
}
