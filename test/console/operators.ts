/**
 * Operators and sessions for the browser tests, through the Neuron's own operator service (what
 * `neuron operator add` calls) and its database, so each test sets up in milliseconds.
 */
import { OperatorService, type OperatorRole } from '../../src/domains/operators/index.ts';
import { isoNow } from '../../src/foundation/storage/index.ts';
import type { TestNeuron } from '../helpers/neuron.ts';

/** Failed sign-ins before a name is locked: console.lockout_failures as the tests configure it. */
export const LOCKOUT_ATTEMPTS = 3;

/**
 * Config for the console tests: a cheap scrypt (the defaults cost 0.1 s and 32 MiB a hash), a short
 * lockout count, and a per-address sign-in limit above the ~20 sign-ins a test file makes from 127.0.0.1.
 */
export const CONSOLE_TEST_CONFIG = {
  console: { lockout_failures: LOCKOUT_ATTEMPTS, signin_limit_per_minute: 1_000, scrypt: { n: 1024, r: 8, p: 1, keylen: 32 } },
};

export async function addOperator(t: TestNeuron, operator: { name: string; role: OperatorRole; password: string }): Promise<void> {
  const service = new OperatorService({ storage: t.neuron.storage, audit: t.neuron.audit, settings: t.neuron.config.console });
  await service.add({ ...operator, actor: 'cli' });
}

/** Every console session ends now, as when its absolute lifetime runs out. */
export async function expireSessions(t: TestNeuron): Promise<void> {
  await t.neuron.storage.db
    .updateTable('operator_sessions')
    .set({ expires_at: isoNow(Date.now() - 1_000) })
    .execute();
}
