import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadlineError, deadlineIn, isTerminal, onFrame, statusOf, transition, type Phase } from './machine.ts';

const ALL: Phase[] = ['awaiting_auth', 'checking', 'awaiting_response', 'committing', 'completed', 'failed', 'abandoned'];

test('the happy path runs auth -> checks -> challenge -> commit -> completed', () => {
  let phase: Phase = 'awaiting_auth';
  for (const event of ['auth_accepted', 'challenge_sent', 'response_verified', 'committed'] as const) {
    const next = transition(phase, event);
    assert.ok(next, `${event} from ${phase}`);
    phase = next;
  }
  assert.equal(phase, 'completed');
  assert.equal(statusOf(phase), 'completed');
});

test('events out of order are refused', () => {
  assert.equal(transition('awaiting_auth', 'challenge_sent'), null);
  assert.equal(transition('awaiting_auth', 'committed'), null);
  assert.equal(transition('checking', 'response_verified'), null);
  assert.equal(transition('awaiting_response', 'auth_accepted'), null);
});

test('every live phase can fail or be abandoned; terminal phases never move', () => {
  for (const phase of ALL) {
    if (isTerminal(phase)) {
      for (const event of ['auth_accepted', 'challenge_sent', 'response_verified', 'committed', 'fail', 'peer_closed'] as const) {
        assert.equal(transition(phase, event), null, `${event} from ${phase}`);
      }
      assert.equal(statusOf(phase), phase === 'completed' ? 'completed' : 'terminated');
    } else {
      assert.equal(transition(phase, 'fail'), 'failed');
      assert.equal(transition(phase, 'peer_closed'), 'abandoned');
      assert.equal(statusOf(phase), 'active');
    }
  }
});

test('frames: parsed as the expected message, out of order or binary is INVALID_MESSAGE, ignored after the end', () => {
  assert.deepEqual(onFrame('awaiting_auth', false), { action: 'parse', expected: 'handshake.auth' });
  assert.deepEqual(onFrame('awaiting_response', false), { action: 'parse', expected: 'handshake.challenge_response' });
  for (const phase of ['checking', 'committing'] as const) {
    const decision = onFrame(phase, false);
    assert.equal(decision.action, 'reject');
    assert.equal(decision.action === 'reject' && decision.error.code, 'INVALID_MESSAGE');
  }
  for (const phase of ['awaiting_auth', 'checking', 'awaiting_response', 'committing'] as const) {
    const decision = onFrame(phase, true);
    assert.equal(decision.action === 'reject' && decision.error.code, 'INVALID_MESSAGE');
  }
  for (const phase of ['completed', 'failed', 'abandoned'] as const) {
    assert.deepEqual(onFrame(phase, false), { action: 'ignore' });
    assert.deepEqual(onFrame(phase, true), { action: 'ignore' });
  }
});

test('deadlines run only while waiting for the client, and both are AUTH_TIMEOUT', () => {
  assert.equal(deadlineIn('awaiting_auth'), 'auth');
  assert.equal(deadlineIn('awaiting_response'), 'challenge');
  for (const phase of ['checking', 'committing', 'completed', 'failed', 'abandoned'] as const) assert.equal(deadlineIn(phase), null);
  assert.equal(deadlineError('auth').code, 'AUTH_TIMEOUT');
  assert.equal(deadlineError('challenge').code, 'AUTH_TIMEOUT');
  assert.equal(deadlineError('auth').closeCode, 4001);
});
