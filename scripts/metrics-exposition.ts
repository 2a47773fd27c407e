/**
 * Prints the Prometheus exposition of a temporary Neuron (SQLite in a temporary directory, port 0,
 * Node's default process metrics on) after one request and one refused handshake upgrade, so
 * every metric family has samples. CI pipes it into `promtool check metrics` (.ci/run).
 *
 *   node --import tsx scripts/metrics-exposition.ts | promtool check metrics
 */
import { startTestNeuron } from '../test/helpers/neuron.ts';

const neuron = await startTestNeuron({ neuronOptions: { defaultMetrics: true } });
try {
  await (await fetch(`${neuron.url}/health/live`)).text();
  await (await fetch(`${neuron.url}/ws/handshake`)).text();
  process.stdout.write(await neuron.neuron.metrics.metrics());
} finally {
  await neuron.stop();
}
