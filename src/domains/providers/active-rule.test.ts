import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activeProviderOf } from './store.ts';

const ROW = { npi: '1245319599', status: 'active', endpoint: 'https://agent.clinic.example/care', publicKey: null };

test('a provider takes patients only when active and with an endpoint (the one rule the roster and the handshake share)', () => {
  assert.deepEqual(activeProviderOf(ROW), { npi: '1245319599', endpoint: 'https://agent.clinic.example/care', publicKey: null });
  for (const status of ['pending', 'suspended', null]) assert.equal(activeProviderOf({ ...ROW, status }), null);
  assert.equal(activeProviderOf({ ...ROW, endpoint: '' }), null);
  assert.equal(activeProviderOf({ ...ROW, endpoint: null }), null);
});
