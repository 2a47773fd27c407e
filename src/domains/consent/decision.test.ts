import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NeuronError } from '../../foundation/errors/index.ts';
import type { Relationship } from '../relationships/store.ts';
import { decideConsent } from './decision.ts';

function relationship(status: Relationship['status'], actions: string[]): Relationship {
  const at = '2026-01-01T00:00:00.000Z';
  return {
    id: `rel-${status}`,
    patientAgentId: 'patient-1',
    patientPublicKey: 'k',
    patientEndpoint: 'wss://p.example',
    providerNpi: '1679576722',
    consentedActions: actions,
    consentTokenPayload: 'p',
    consentTokenSignature: 's',
    tokenDialect: 'A',
    consentExpiresAt: at,
    connectionId: null,
    status,
    statusReason: null,
    establishedAt: at,
    lastHandshakeAt: at,
    updatedAt: at,
  };
}

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof NeuronError);
    return error.code;
  }
  return 'allowed';
};

test('an active relationship allows exactly the consented actions', () => {
  const active = relationship('active', ['office_visit', 'lab_results']);
  assert.deepEqual(decideConsent(active, null, 'lab_results'), {
    allowed: true,
    relationshipId: 'rel-active',
    scope: ['office_visit', 'lab_results'],
  });
  assert.equal(
    code(() => decideConsent(active, null, 'surgery')),
    'CONSENT_DENIED',
  );
  assert.equal(
    code(() => decideConsent(active, null, 'Lab_Results')),
    'CONSENT_DENIED',
    'actions are compared verbatim',
  );
});

test('without an active relationship: terminated is 410, anything else is denied', () => {
  assert.equal(
    code(() => decideConsent(null, relationship('terminated', ['office_visit']), 'office_visit')),
    'RELATIONSHIP_TERMINATED',
  );
  assert.equal(
    code(() => decideConsent(null, relationship('suspended', ['office_visit']), 'office_visit')),
    'CONSENT_DENIED',
  );
  assert.equal(
    code(() => decideConsent(null, null, 'office_visit')),
    'CONSENT_DENIED',
  );
});
