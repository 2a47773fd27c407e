/**
 * Local discovery: the Neuron advertises itself over mDNS/DNS-SD, and `neuron discover` lists the
 * Neurons on the local network. See docs/discovery.md.
 */
export { createDiscoveryAdvertiser } from './advertiser.ts';
export { notAdvertisedReason } from './links.ts';
// browseNeurons and watchNeurons are imported from ./browser.ts directly, when needed: re-exported
// here they would load bonjour-service's browser into every serving Neuron.
export {
  DEFAULT_BROWSE_TIMEOUT_MS,
  MAX_BROWSE_TIMEOUT_MS,
  formatDiscoveredNeurons,
} from './records.ts';
export type {
  DiscoveredNeuron,
  DiscoveryAdvertiser,
  DiscoveryAdvertiserOptions,
  DiscoveryLogger,
} from './types.ts';
