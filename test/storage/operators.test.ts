/**
 * The console's tables (migration 006) and queries on every backend: operators and sessions
 * (a session goes with its operator, ended sessions are swept), sign-in through the service with
 * its lockout in the database, and the per-day handshake counts from the audit log.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/foundation/observability/logger.ts';
import { AuditLog } from '../../src/domains/audit/index.ts';
import { ensureOrganizationKey } from '../../src/foundation/organization/keys.ts';
import { deleteEndedSessions, getSession, insertSession } from '../../src/domains/operators/store.ts';
import { OperatorService, sessionDigest } from '../../src/domains/operators/service.ts';
import { handshakesPerDay } from '../../src/domains/status/handshake-stats.ts';
import type { NeuronError } from '../../src/foundation/errors/index.ts';
import type { Storage } from '../../src/foundation/storage/index.ts';
import { testDatabases } from '../helpers/databases.ts';

const DAY_MS = 86_400_000;
const PASSWORD = 'a synthetic test passphrase';

async function serviceOver(storage: Storage): Promise<{ service: OperatorService; audit: AuditLog }> {
  const { key } = await ensureOrganizationKey(storage.db);
  const audit = new AuditLog({ storage, key, logger: createLogger({ level: 'silent', pretty: 'never' }) });
  const settings = {
    session_idle_ms: 60_000,
    session_absolute_ms: 3_600_000,
    session_touch_interval_ms: 0,
    signin_limit_per_minute: 1_000,
    lockout_failures: 2,
    lockout_ms: 60_000,
    password_min_length: 15,
    stats_max_days: 366,
    // Cheap scrypt so the suite spends its time on behaviour (never a production value).
    scrypt: { n: 1024, r: 8, p: 1, keylen: 32 },
  };
  return { service: new OperatorService({ storage, audit, settings }), audit };
}

for (const backend of testDatabases()) {
  describe(`console operators and statistics (${backend.name})`, () => {
    it('signs in, locks out after failures, and removing the operator removes their sessions', async (t) => {
      const { storage } = await backend.open(t);
      const { service } = await serviceOver(storage);
      await service.add({ name: 'desk', role: 'front-desk', password: PASSWORD, actor: 'cli' });
      assert.equal(await service.count(), 1);
      const { token, view } = await service.signIn({ name: 'desk', password: PASSWORD, clientAddress: '127.0.0.1' });
      assert.deepEqual(view.operator, { name: 'desk', role: 'front-desk' });
      assert.equal((await service.authenticate(token)).operatorName, 'desk');

      await assert.rejects(
        service.signIn({ name: 'desk', password: 'wrong but long enough', clientAddress: '127.0.0.1' }),
        (e: NeuronError) => e.code === 'INVALID_CREDENTIALS',
      );
      await assert.rejects(
        service.signIn({ name: 'desk', password: 'wrong but long enough', clientAddress: '127.0.0.1' }),
        (e: NeuronError) => e.code === 'OPERATOR_LOCKED',
      );
      await assert.rejects(
        service.signIn({ name: 'desk', password: PASSWORD, clientAddress: '127.0.0.1' }),
        (e: NeuronError) => e.code === 'OPERATOR_LOCKED',
      );
      const [listed] = await service.list();
      assert.ok(listed?.locked_until !== null);

      await service.remove('desk', 'cli');
      assert.equal(await getSession(storage.db, sessionDigest(token)), null);
      await assert.rejects(service.authenticate(token), (e: NeuronError) => e.code === 'SESSION_EXPIRED');
      assert.equal(await service.count(), 0);
    });

    it('sweeps sessions past their absolute end or idle too long, and keeps live ones', async (t) => {
      const { storage } = await backend.open(t);
      const { service } = await serviceOver(storage);
      await service.add({ name: 'sweeper', role: 'admin', password: PASSWORD, actor: 'cli' });
      const base = { operatorName: 'sweeper', createdAt: '2026-03-01T08:00:00.000Z' };
      await insertSession(storage.db, {
        ...base,
        tokenDigest: 'expired',
        lastSeenAt: '2026-03-01T09:59:00.000Z',
        expiresAt: '2026-03-01T09:00:00.000Z',
      });
      await insertSession(storage.db, {
        ...base,
        tokenDigest: 'idle',
        lastSeenAt: '2026-03-01T08:30:00.000Z',
        expiresAt: '2026-03-01T20:00:00.000Z',
      });
      await insertSession(storage.db, {
        ...base,
        tokenDigest: 'live',
        lastSeenAt: '2026-03-01T09:59:00.000Z',
        expiresAt: '2026-03-01T20:00:00.000Z',
      });
      await deleteEndedSessions(storage.db, '2026-03-01T10:00:00.000Z', '2026-03-01T09:30:00.000Z');
      const left = (await storage.db.selectFrom('operator_sessions').select('token_digest').execute()).map((row) => row.token_digest);
      assert.deepEqual(left, ['live']);
      assert.equal((await getSession(storage.db, 'live'))?.role, 'admin');
    });

    it('counts completed and failed handshakes per UTC day', async (t) => {
      const { storage } = await backend.open(t);
      const { audit } = await serviceOver(storage);
      const now = Date.parse('2026-03-10T12:00:00.000Z');
      const append = (type: string, at: number): Promise<unknown> =>
        storage.transaction((trx) => audit.append(trx, { type, actor: 'system', details: {} }, at));
      await append('handshake.completed', now);
      await append('handshake.completed', now - 3_600_000);
      await append('handshake.failed', now);
      await append('handshake.completed', now - DAY_MS);
      await append('handshake.failed', now - 5 * DAY_MS);
      await append('api_key.created', now);
      const days = await handshakesPerDay(storage.db, 3, now);
      assert.deepEqual(days, [
        { date: '2026-03-08', completed: 0, failed: 0 },
        { date: '2026-03-09', completed: 1, failed: 0 },
        { date: '2026-03-10', completed: 2, failed: 1 },
      ]);
    });
  });
}
