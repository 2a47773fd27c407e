import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createHandshakeMetrics } from './metrics.ts';

describe('handshake metrics', () => {
  it('counts outcomes and observes durations under their own labels (children bound once, reused)', async () => {
    const registry = new Registry();
    const metrics = createHandshakeMetrics(registry, { active: () => 3, queued: () => 1 });
    metrics.outcome('new');
    metrics.outcome('new');
    metrics.outcome('CONSENT_FAILED');
    metrics.duration('completed', 0.003);
    metrics.duration('completed', 0.004);
    metrics.duration('failed', 1);
    metrics.queueWait(0);
    const text = await registry.metrics();
    assert.match(text, /^neuron_handshakes_total\{outcome="new"\} 2$/m);
    assert.match(text, /^neuron_handshakes_total\{outcome="CONSENT_FAILED"\} 1$/m);
    assert.match(text, /^neuron_handshake_duration_seconds_count\{outcome="completed"\} 2$/m);
    assert.match(text, /^neuron_handshake_duration_seconds_bucket\{le="0.005",outcome="completed"\} 2$/m);
    assert.match(text, /^neuron_handshake_duration_seconds_count\{outcome="failed"\} 1$/m);
    assert.match(text, /^neuron_handshake_queue_wait_seconds_count 1$/m);
    assert.match(text, /^neuron_handshakes_active 3$/m);
  });
});
