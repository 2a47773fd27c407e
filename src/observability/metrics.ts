/**
 * Prometheus metrics. Each Neuron owns its registry (not prom-client's global one) so several
 * Neurons in one process, as in tests, never collide.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

export function createMetricsRegistry(options: { defaultMetrics: boolean }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'neuron' });
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'neuron_' });
  return registry;
}
