/**
 * The provider side of the client package (neuron-careagent-client) against a real Neuron: the
 * pull feed read with readProviderFeed, each notice's attestation checked with verifyAttestation
 * under the key given with the credential, and the coded failures.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FeedError, readProviderFeed, verifyAttestation } from 'neuron-careagent-client';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { api, connectPatient, createApiKey } from '../../../test/helpers/providers.ts';

const PROVIDER = '1679576722';
const OTHER = '1376841239';
const ENDPOINT = 'wss://provider.example/agent';

let t: TestNeuron;
let credential: string;
let neuronKey: string;

before(async () => {
  t = await startTestNeuron({
    config: {
      providers: [
        { npi: PROVIDER, name: 'Dr. Feed', provider_endpoint: ENDPOINT },
        { npi: OTHER, name: 'Dr. Other', provider_endpoint: ENDPOINT },
      ],
    },
  });
  const admin = await createApiKey(t.neuron, ['admin'], 'feed-admin');
  const approved = await api(t.url, 'POST', `/v1/providers/${PROVIDER}/approve`, { token: admin, body: {} });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  credential = approved.body.credential;
  neuronKey = approved.body.neuron_public_key;
});
after(async () => t.stop());

describe('readProviderFeed', () => {
  test('reads the notices page by page with the cursor, each attestation verifying under the Neuron key', async () => {
    const patients = [];
    for (let i = 0; i < 3; i++) patients.push(await connectPatient(t.handshakeUrl, PROVIDER, ['office_visit'], `pkgfeed${i}`));
    await connectPatient(t.handshakeUrl, OTHER, ['office_visit'], 'pkgelsewhere');

    const first = await readProviderFeed({ neuronUrl: t.url, npi: PROVIDER, credential, limit: 2 });
    assert.equal(first.hasMore, true);
    assert.deepEqual(
      first.items.map((notice) => notice.patient_agent_id),
      patients.slice(0, 2).map((p) => p.patientAgentId),
    );
    const second = await readProviderFeed({ neuronUrl: `${t.url}/`, npi: PROVIDER, credential, after: first.next });
    assert.equal(second.hasMore, false);
    assert.deepEqual(
      second.items.map((notice) => notice.patient_agent_id),
      [patients[2]!.patientAgentId],
    );

    for (const notice of [...first.items, ...second.items]) {
      const attested = verifyAttestation(notice.attestation, neuronKey, {
        provider_npi: PROVIDER,
        patient_agent_id: notice.patient_agent_id,
        patient_public_key: notice.patient_public_key,
        relationship_id: notice.relationship_id,
      });
      assert.deepEqual(attested.consented_actions, ['office_visit']);
    }

    const idle = await readProviderFeed({ neuronUrl: t.url, npi: PROVIDER, credential, after: second.next });
    assert.deepEqual(idle.items, []);
    assert.equal(idle.next, second.next, 'nothing new: the same cursor to keep polling with');
  });

  test("fails with the Neuron's problem code, or a code of its own when there is no answer", async () => {
    const wrong = `${credential.slice(0, -1)}${credential.endsWith('A') ? 'B' : 'A'}`;
    await assert.rejects(
      readProviderFeed({ neuronUrl: t.url, npi: PROVIDER, credential: wrong }),
      (error: unknown) => error instanceof FeedError && error.code === 'UNAUTHENTICATED' && error.status === 401,
    );
    await assert.rejects(
      readProviderFeed({ neuronUrl: t.url, npi: OTHER, credential }),
      (error: unknown) => error instanceof FeedError && error.code === 'NOT_FOUND' && error.status === 404,
      "another provider's feed",
    );

    // A port nobody listens on.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      readProviderFeed({ neuronUrl: `http://127.0.0.1:${port}`, npi: PROVIDER, credential }),
      (error: unknown) => error instanceof FeedError && error.code === 'CONNECTION_FAILED' && error.status === undefined,
    );

    // Something that answers, but not with a feed.
    const impostor = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":"none"}'));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(impostor.address() as AddressInfo).port}`;
      await assert.rejects(
        readProviderFeed({ neuronUrl: url, npi: PROVIDER, credential }),
        (error: unknown) => error instanceof FeedError && error.code === 'UNEXPECTED_RESPONSE' && error.status === 200,
      );
    } finally {
      await new Promise<void>((resolve) => impostor.close(() => resolve()));
    }
  });
});
