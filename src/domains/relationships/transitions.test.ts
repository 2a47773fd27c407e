import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NeuronError } from '../../foundation/errors/index.ts';
import { transitionFor } from './transitions.ts';

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    return error instanceof NeuronError ? error.code : 'not a NeuronError';
  }
  return undefined;
}

test('suspend, resume and terminate move between the allowed statuses, each audited under its own type', () => {
  assert.deepEqual(transitionFor('active', 'suspend'), { to: 'suspended', audit: 'relationship.suspended' });
  assert.deepEqual(transitionFor('suspended', 'resume'), { to: 'active', audit: 'relationship.resumed' });
  assert.deepEqual(transitionFor('active', 'terminate'), { to: 'terminated', audit: 'relationship.terminated' });
  assert.deepEqual(transitionFor('suspended', 'terminate'), { to: 'terminated', audit: 'relationship.terminated' });
});

test('a change that does not apply to the current status is CONFLICT; any change to a terminated one is RELATIONSHIP_TERMINATED', () => {
  assert.equal(
    codeOf(() => transitionFor('suspended', 'suspend')),
    'CONFLICT',
  );
  assert.equal(
    codeOf(() => transitionFor('active', 'resume')),
    'CONFLICT',
  );
  for (const action of ['suspend', 'resume', 'terminate'] as const) {
    assert.equal(
      codeOf(() => transitionFor('terminated', action)),
      'RELATIONSHIP_TERMINATED',
    );
  }
});
