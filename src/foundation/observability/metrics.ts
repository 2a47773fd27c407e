/**
 * Prometheus metrics. Each Neuron owns its registry (not prom-client's global one) so several
 * Neurons in one process, as in tests, never collide.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * prom-client's default metrics include three gauges named like counters
 * (`nodejs_active_{handles,requests,resources}_total`), which `promtool check metrics` flags and
 * which are only the sums of `neuron_nodejs_active_{handles,requests,resources}` by type: dropped.
 */
const MISNAMED_DEFAULT_GAUGES = [
  'neuron_nodejs_active_handles_total',
  'neuron_nodejs_active_requests_total',
  'neuron_nodejs_active_resources_total',
];

export function createMetricsRegistry(options: { defaultMetrics: boolean }): Registry {
  // No constant labels: a `service="neuron"` on every series said nothing the job label does not.
  const registry = new Registry();
  if (options.defaultMetrics) {
    collectDefaultMetrics({ register: registry, prefix: 'neuron_' });
    for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(name);
  }
  return registry;
}
