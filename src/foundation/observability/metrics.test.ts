/**
 * The Prometheus exposition of a real Neuron (Node's default metrics on): the naming rules
 * `promtool check metrics` applies (CI runs promtool itself, .ci/run), no constant labels, one
 * label name for outcomes, and the service metrics: request-duration histogram by route pattern,
 * outbox backlog and dead letters, registry heartbeat age, build info.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { isoNow } from '../storage/index.ts';
import { registerServiceMetrics } from './service-metrics.ts';
import { OutboxService } from '../../domains/outbox/index.ts';

interface Family {
  name: string;
  type: string;
  help: string | undefined;
  samples: Array<{ name: string; labels: Record<string, string>; value: string }>;
}

/** Parses the text exposition format into metric families. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  for (const line of text.split('\n').filter(Boolean)) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (kind === 'HELP') helps.set(name, rest);
      else families.set(name, { name, type: rest, help: helps.get(name), samples: [] });
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(sample, `not a sample line: ${line}`);
    const [, sampleName, labelText, value] = sample as unknown as [string, string, string | undefined, string];
    const labels = Object.fromEntries(
      [...(labelText ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    const family = [...families.values()].reverse().find((f) => sampleName === f.name || sampleName.startsWith(`${f.name}_`));
    assert.ok(family, `sample without a TYPE: ${line}`);
    family.samples.push({ name: sampleName, labels, value });
  }
  return families;
}

/** The rules promtool's linter checks that apply to this exposition, as messages. */
function namingProblems(families: Map<string, Family>): string[] {
  const problems: string[] = [];
  for (const family of families.values()) {
    const { name, type } = family;
    if (!name.startsWith('neuron_')) problems.push(`${name}: not under the neuron_ prefix`);
    if (!family.help) problems.push(`${name}: no HELP`);
    if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: counter without _total`);
    if (type !== 'counter' && name.endsWith('_total')) problems.push(`${name}: ${type} named like a counter (_total)`);
    if (type === 'histogram' && !/_(seconds|bytes)$/.test(name)) problems.push(`${name}: histogram without a base unit suffix`);
    if (/_(milliseconds|ms|minutes|kilobytes)(_|$)/.test(name)) problems.push(`${name}: not a base unit`);
    for (const sample of family.samples) {
      if ('service' in sample.labels) problems.push(`${sample.name}: constant service label`);
      if ('result' in sample.labels) problems.push(`${sample.name}: label "result" (outcomes are labelled "outcome")`);
    }
  }
  return problems;
}

let t: TestNeuron;
let families: Map<string, Family>;

before(async () => {
  t = await startTestNeuron({ neuronOptions: { defaultMetrics: true } });
  await (await fetch(`${t.url}/health/live`)).text();
  await (await fetch(`${t.url}/v1/providers/reg_0123456789SECRET/heartbeat`)).text();
  await (await fetch(`${t.url}/no/such/path`)).text();
  await (await fetch(`${t.url}/ws/handshake`)).text();
  const at = isoNow();
  for (const [index, status] of (['pending', 'pending', 'dead'] as const).entries()) {
    await t.neuron.storage.db
      .insertInto('outbox')
      .values({
        event_id: `metrics-test-${index}`,
        kind: 'webhook',
        target: 'metrics-test',
        event_type: 'test.event',
        body: '{}',
        status,
        // Far in the future, so the outbox worker leaves the pending rows where they are.
        attempts: 0,
        next_attempt_at: '2099-01-01T00:00:00.000Z',
        locked_by: null,
        locked_until: null,
        last_error: null,
        created_at: at,
        delivered_at: null,
      })
      .execute();
  }
  families = parseExposition(await t.neuron.metrics.metrics());
});
after(async () => t.stop());

describe('metrics exposition', () => {
  test('follows the Prometheus naming rules: counters end in _total and nothing else does, base units, no constant labels', () => {
    assert.ok(families.size > 20);
    assert.deepEqual(namingProblems(families), []);
  });

  test('request durations are a histogram by method, route pattern and status class, never the raw path', () => {
    const family = families.get('neuron_http_request_duration_seconds');
    assert.equal(family?.type, 'histogram');
    const counts = family!.samples.filter((s) => s.name.endsWith('_count')).map((s) => s.labels);
    assert.deepEqual(
      counts.find((l) => l['route'] === '/health/live'),
      { method: 'GET', route: '/health/live', status_class: '2xx' },
    );
    assert.ok(counts.some((l) => l['route'] === '/v1/providers/:registration_id/heartbeat'));
    assert.ok(counts.some((l) => l['route'] === 'unmatched' && l['status_class'] === '4xx'));
    assert.ok(!JSON.stringify(family).includes('SECRET') && !JSON.stringify(family).includes('/no/such/path'));
  });

  test('outbox backlog and dead letters, build info, and outcome labels', () => {
    assert.equal(families.get('neuron_outbox_backlog')?.samples[0]?.value, '2');
    assert.equal(families.get('neuron_outbox_dead_letters')?.samples[0]?.value, '1');
    const build = families.get('neuron_build_info');
    assert.equal(build?.type, 'gauge');
    assert.deepEqual(Object.keys(build!.samples[0]!.labels).sort(), ['node_version', 'version']);
    assert.equal(build!.samples[0]!.labels['node_version'], process.version);
    assert.equal(build!.samples[0]!.value, '1');
    for (const name of ['neuron_handshakes_total', 'neuron_handshake_duration_seconds', 'neuron_outbox_deliveries_total']) {
      assert.ok(families.has(name), name);
    }
    assert.ok(families.get('neuron_handshakes_total')!.samples.every((s) => 'outcome' in s.labels));
    // Registry off in tests: no heartbeat yet, so the age is NaN, never a made-up 0 ("just now").
    assert.equal(families.get('neuron_registry_heartbeat_age_seconds')?.type, 'gauge');
    // prom-client prints NaN as `Nan`, which Prometheus parses (case-insensitively) as NaN.
    assert.match(families.get('neuron_registry_heartbeat_age_seconds')?.samples[0]?.value ?? '', /^nan$/i);
    assert.equal(families.get('neuron_registry_heartbeat_age_seconds')?.samples.length, 1);
  });

  test('the registry heartbeat age is the seconds since the last heartbeat the registry status reports', async () => {
    const registry = new Registry();
    let last: string | null = '2026-01-01T00:00:00.000Z';
    registerServiceMetrics(registry, {
      version: '0.0.0-test',
      outboxCounts: () => new OutboxService({ storage: t.neuron.storage, audit: t.neuron.audit }).deliveryCounts(),
      lastHeartbeatAt: () => last,
      now: () => Date.parse('2026-01-01T00:01:30.000Z'),
    });
    const age = async () =>
      parseExposition(await registry.metrics())
        .get('neuron_registry_heartbeat_age_seconds')
        ?.samples.map((s) => s.value);
    assert.deepEqual(await age(), ['90']);
    last = null;
    assert.match((await age())?.join() ?? '', /^nan$/i);
  });
});
