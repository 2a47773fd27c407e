/**
 * The organization's agent card: built from the `services` configuration section and the roster,
 * served at /.well-known/agent-card.json, and kept in the registry's agent-card routes (the fake
 * registry stores what it is sent), across a restart, a change of services, a roster change, an
 * outage, and the removal of every capability.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeRegistry, type FakeRegistry } from '../fakes/fake-registry.ts';
import { agentCardId, buildAgentCard, type ServicesOffer } from '../../src/network/registry/index.ts';
import { DR_ONE, DR_TWO, ORG_NPI, auditTypes, cli, count, insertProvider, startNeuron, writeConfig, type Harness } from './harness.ts';
import { waitFor } from '../helpers/wait.ts';

const CARD_ID = agentCardId(ORG_NPI);
const SERVICES = {
  description: 'Synthetic family practice for tests',
  capabilities: [
    { name: 'office_visit', description: 'In-person visits' },
    { name: 'scheduling', description: 'Book and move appointments' },
  ],
  location: { city: 'Springfield', state: 'IL', zip: '62701' },
};
const CARD_WRITES = /^\/v1\/agent-cards(\/[^/]+)?$/;

describe('the agent card (pure)', () => {
  const offer: ServicesOffer = {
    description: '',
    capabilities: [{ name: 'lab_results', description: '' }],
    specialty: '',
    location: { address: '', city: '', state: '', zip: '', country: 'US' },
  };
  const input = {
    organization: { npi: ORG_NPI, name: 'Synthetic Clinic' },
    services: offer,
    handshakeUrl: 'wss://neuron.example.test/ws/handshake',
    publicUrl: 'https://neuron.example.test',
    version: '0.1.0',
    roster: [
      { npi: DR_ONE, name: 'Dr. One', types: ['physician'], specialty: 'cardiology' },
      { npi: DR_TWO, name: 'Dr. Two', types: ['physician'], specialty: 'cardiology' },
    ],
  };

  it('names the handshake URL, the capabilities and what the whole roster shares; the same fixed shape every time', () => {
    const card = buildAgentCard(input);
    assert.ok(card);
    assert.equal(card.id, CARD_ID);
    assert.equal(card.url, 'wss://neuron.example.test/ws/handshake');
    assert.deepEqual(card.capabilities, [{ name: 'lab_results', description: '' }]);
    assert.equal(card.careagent.specialty, 'cardiology');
    assert.equal(card.careagent.provider_type, 'physician');
    assert.equal(card.careagent.practice_npi, ORG_NPI);
    assert.equal(card.careagent.consent_required, true);
    const mixed = buildAgentCard({
      ...input,
      roster: [...input.roster, { npi: '1003000126', name: 'N', types: ['nursing'], specialty: 'pediatrics' }],
    });
    assert.equal(mixed?.careagent.specialty, '', 'no single specialty: none claimed');
    assert.equal(mixed?.careagent.provider_type, '');
    assert.deepEqual(Object.keys(mixed ?? {}), Object.keys(card), 'every card has every member');
  });

  it('offers nothing without a capability', () => {
    assert.equal(buildAgentCard({ ...input, services: { ...offer, capabilities: [] } }), null);
  });
});

describe('the agent card of a running Neuron', () => {
  let fake: FakeRegistry;
  let harnesses: Harness[];

  beforeEach(async () => {
    fake = await startFakeRegistry();
    harnesses = [];
  });
  afterEach(async () => {
    await Promise.all(harnesses.map((h) => h.cleanup()));
    await fake.close();
  });

  async function start(extra: Record<string, unknown>): Promise<Harness> {
    const h = await startNeuron(fake, extra);
    harnesses.push(h);
    return h;
  }

  async function served(h: Harness): Promise<Response> {
    return fetch(new URL('/.well-known/agent-card.json', h.neuron.address().url));
  }

  it('is served publicly and published to the registry, with the handshake URL as its url', async () => {
    const h = await start({ services: SERVICES });
    await waitFor('the card in the registry', () => fake.agentCards.has(CARD_ID));
    const stored = fake.agentCards.get(CARD_ID)!;
    assert.equal(stored['url'], h.neuron.address().handshakeUrl);
    assert.deepEqual(
      (stored['capabilities'] as Array<{ name: string }>).map((c) => c.name),
      ['office_visit', 'scheduling'],
    );
    assert.equal((stored['careagent'] as { location: { city: string } }).location.city, 'Springfield');

    const response = await served(h);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    const etag = response.headers.get('etag');
    assert.ok(etag);
    assert.deepEqual(await response.json(), stored, 'the page and the registry carry the same card');
    const again = await fetch(new URL('/.well-known/agent-card.json', h.neuron.address().url), { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.ok((await auditTypes(h.neuron, 'registry.agent_card_published')).length >= 1);
  });

  it('follows a change of services across a restart, and the roster as it changes', async () => {
    const h = await start({ services: SERVICES });
    await waitFor('the card in the registry', () => fake.agentCards.has(CARD_ID));
    const postsBefore = count(fake, 'POST', /^\/v1\/agent-cards$/);

    writeConfig(h.dir, fake, { services: { ...SERVICES, capabilities: [{ name: 'lab_results', description: 'Results from our lab' }] } });
    await h.restart();
    await waitFor(
      'the changed card',
      () => (fake.agentCards.get(CARD_ID)?.['capabilities'] as Array<{ name: string }> | undefined)?.[0]?.name === 'lab_results',
    );
    assert.equal(
      (fake.agentCards.get(CARD_ID)?.['capabilities'] as unknown[] | undefined)?.length,
      1,
      'the old capabilities are gone, not merged',
    );
    assert.equal(count(fake, 'POST', /^\/v1\/agent-cards$/), postsBefore, 'the card was updated in place, not created twice');
    assert.equal(fake.agentCards.size, 1);

    await insertProvider(h.neuron, DR_ONE, 'active', ['dental']);
    h.neuron.presence.providersChanged();
    await waitFor(
      'the roster in the card',
      () => (fake.agentCards.get(CARD_ID)?.['careagent'] as { provider_type: string } | undefined)?.provider_type === 'dental',
    );
  });

  it('is retried while the registry is unreachable, then published', async () => {
    const h = await start({ services: SERVICES });
    await waitFor('the card in the registry', () => fake.agentCards.has(CARD_ID));
    fake.agentCards.clear();
    fake.setFault('down');
    writeConfig(h.dir, fake, { services: SERVICES });
    await h.restart();
    await waitFor('attempts refused', () => fake.dropped >= 2);
    assert.equal(fake.agentCards.size, 0);
    fake.setFault('none');
    await waitFor('the card back in the registry', () => fake.agentCards.has(CARD_ID));
  });

  it('is removed from the registry once no capability is configured, and no longer served', async () => {
    const h = await start({ services: SERVICES });
    await waitFor('the card in the registry', () => fake.agentCards.has(CARD_ID));
    writeConfig(h.dir, fake, {});
    await h.restart();
    await waitFor('the card deleted', () => !fake.agentCards.has(CARD_ID));
    assert.equal((await served(h)).status, 404);
    assert.ok((await auditTypes(h.neuron, 'registry.agent_card_removed')).length >= 1);
    const writes = count(fake, 'DELETE', CARD_WRITES);
    await h.restart();
    // A Neuron that has nothing to offer and already removed its card sends nothing about cards.
    await waitFor('a heartbeat after the restart', () => count(fake, 'PUT', /endpoint$/) > 0);
    assert.equal(count(fake, 'DELETE', CARD_WRITES), writes);
  });

  it('is deregistered with the registration: `neuron registry reset` deletes it from the registry', async () => {
    const h = await start({ services: SERVICES });
    await waitFor('the card in the registry', () => fake.agentCards.has(CARD_ID));
    // The Neuron notes the card as published once the registry's answer is back (then audits it);
    // a stop before that answer leaves it unnoted, and reset would have nothing to delete.
    await waitFor('the card noted as published', async () => (await auditTypes(h.neuron, 'registry.agent_card_published')).length >= 1);
    await h.neuron.stop();
    const reset = await cli(h.configFile, ['registry', 'reset', '--yes']);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /agent card was removed from the registry/);
    assert.equal(fake.agentCards.has(CARD_ID), false);
  });
});
