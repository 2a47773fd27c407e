/**
 * Finds Neurons on the local network with bonjour-service (a DNS-SD browser over multicast-dns).
 * Only `neuron discover` uses it, and imports it when run (not through ./index.ts), so that a
 * serving Neuron does not load bonjour-service's browser at start.
 */
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Bonjour, type Browser, type Service } from 'bonjour-service';
import { NeuronError } from '../../foundation/errors/index.ts';
import {
  DEFAULT_BROWSE_TIMEOUT_MS,
  MAX_BROWSE_TIMEOUT_MS,
  NEURON_SERVICE_PROTOCOL,
  NEURON_SERVICE_TYPE,
  toDiscoveredNeuron,
  type RawService,
} from './records.ts';
import type { BrowseOptions, DiscoveredNeuron, NeuronWatcher, NeuronWatchListener, WatchOptions } from './types.ts';

/**
 * First repeat of the PTR query, then doubling (1 s, 2 s, 4 s, ...): RFC 6762 section 5.2 asks
 * continuous queriers to wait at least one second and to double the interval. Repeats catch
 * answers lost to packet loss and responders that were still probing when we first asked.
 */
export const FIRST_REQUERY_DELAY_MS = 1_000;

/**
 * Lists every Neuron that answers within `timeoutMs` (default 3 s). Resolves with the Neurons
 * sorted by name; rejects when the mDNS socket cannot be opened or the options are invalid.
 */
export async function browseNeurons(options: BrowseOptions = {}): Promise<DiscoveredNeuron[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_BROWSE_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_BROWSE_TIMEOUT_MS) {
    throw new NeuronError('VALIDATION_FAILED', {
      message: 'The browse timeout is not valid',
      errors: [{ path: 'timeoutMs', message: `must be more than 0 and at most ${MAX_BROWSE_TIMEOUT_MS} ms` }],
    });
  }
  const found = new Map<string, DiscoveredNeuron>();
  let failure: Error | undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const watcher = watchNeurons(options.interface === undefined ? {} : { interface: options.interface }, {
    up: (neuron) => found.set(neuron.fqdn.toLowerCase(), neuron),
    down: (neuron) => found.delete(neuron.fqdn.toLowerCase()),
    error: (error) => {
      failure = error;
      finish();
    },
  });
  const timer = setTimeout(finish, timeoutMs);
  try {
    await finished;
  } finally {
    clearTimeout(timer);
    await watcher.stop();
  }
  if (failure !== undefined) throw failure;
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name) || a.fqdn.localeCompare(b.fqdn));
}

/**
 * Keeps browsing until `stop()`: reports Neurons as they appear, change and say goodbye. The
 * query is repeated with doubling intervals (1 s, 2 s, 4 s, ... capped at a minute).
 */
export function watchNeurons(options: WatchOptions, listener: NeuronWatchListener): NeuronWatcher {
  const multicastInterface = options.interface === undefined ? undefined : resolveBrowseInterface(options.interface);
  let stopped = false;
  const reportError = (error: unknown) => {
    if (stopped) return;
    listener.error?.(error instanceof Error ? error : new Error(String(error)));
  };

  // bonjour-service passes these options straight to multicast-dns. `interface` chooses where
  // queries go out and where the group is joined; `bind` must stay the wildcard address, because
  // a socket bound to the interface address never receives packets sent to 224.0.0.251.
  const multicastOptions = multicastInterface === undefined ? {} : { interface: multicastInterface, bind: '0.0.0.0' };
  const bonjour = new Bonjour(multicastOptions as ConstructorParameters<typeof Bonjour>[0], reportError);
  // multicast-dns reports bind failures (EADDRINUSE, EACCES) as an 'error' event, which would be
  // thrown as an uncaught exception without a listener. bonjour-service keeps that emitter private.
  const socketEvents = (bonjour as unknown as { server?: { mdns?: unknown } }).server?.mdns;
  if (socketEvents instanceof EventEmitter) socketEvents.on('error', reportError);

  const browser: Browser = bonjour.find({ type: NEURON_SERVICE_TYPE, protocol: NEURON_SERVICE_PROTOCOL });
  const report = (kind: 'up' | 'down', service: Service) => {
    if (stopped) return;
    const neuron = toDiscoveredNeuron(service as unknown as RawService);
    if (neuron !== null) listener[kind]?.(neuron);
  };
  browser.on('up', (service) => report('up', service));
  browser.on('srv-update', (service) => report('up', service));
  browser.on('txt-update', (service) => report('up', service));
  browser.on('down', (service) => report('down', service));

  let delay = FIRST_REQUERY_DELAY_MS;
  let timer: NodeJS.Timeout | undefined;
  const requery = () => {
    if (stopped) return;
    browser.update();
    delay = Math.min(delay * 2, MAX_BROWSE_TIMEOUT_MS); // doubling, never more than a minute apart
    timer = setTimeout(requery, delay);
  };
  timer = setTimeout(requery, delay);

  let stopping: Promise<void> | undefined;
  return {
    stop: () => {
      stopping ??= new Promise<void>((resolve) => {
        stopped = true;
        clearTimeout(timer);
        browser.stop();
        bonjour.destroy(() => resolve());
      });
      return stopping;
    },
  };
}

/** multicast-dns wants the interface's IPv4 address; accept a name too. */
function resolveBrowseInterface(requested: string): string {
  if (isIPv4(requested)) return requested;
  const address = networkInterfaces()[requested]?.find((info) => info.family === 'IPv4')?.address;
  if (address === undefined) {
    throw new NeuronError('VALIDATION_FAILED', {
      message: 'The network interface is not valid',
      errors: [{ path: 'interface', message: `no network interface named ${requested} with an IPv4 address` }],
    });
  }
  return address;
}
