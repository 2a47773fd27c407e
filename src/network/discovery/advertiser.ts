/**
 * Advertises this Neuron on the local network as `_careagent-neuron._tcp` over mDNS/DNS-SD. This
 * file checks the options and starts and stops runs (a start() after a stop() waits for its
 * goodbyes); each run, ./advertisement.ts, follows RFC 6762's responder life cycle.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import { interfaceNameFor } from './links.ts';
import { buildTxtRecord, sanitizeInstanceName } from './records.ts';
import { Advertisement } from './advertisement.ts';
import type { DiscoveryAdvertiser, DiscoveryAdvertiserOptions } from './types.ts';

export function createDiscoveryAdvertiser(options: DiscoveryAdvertiserOptions): DiscoveryAdvertiser {
  validateOptions(options);
  const { logger } = options;
  const requestedName = sanitizeInstanceName(options.instanceName);
  const txt = buildTxtRecord(options);
  const interfaces = resolveInterfaces(options.interfaces ?? []);

  let currentName = requestedName;
  let running: Advertisement | undefined;
  /** The teardown under way, if any. */
  let stopping: Promise<void> | undefined;
  /** A start() waiting for that teardown to finish. */
  let restarting: Promise<void> | undefined;
  /** Bumped by every stop(), so a start() waiting on an older teardown knows it was cancelled. */
  let stopCount = 0;

  function start(): Promise<void> {
    if (running !== undefined) return running.started;
    if (restarting !== undefined) return restarting;
    if (stopping !== undefined) {
      const stopsSoFar = stopCount;
      restarting = stopping.then(() => {
        restarting = undefined;
        return stopCount === stopsSoFar ? start() : undefined;
      });
      return restarting;
    }
    currentName = requestedName;
    const advertisement = new Advertisement({
      requestedName,
      port: options.port,
      txt,
      interfaces,
      boundAddress: options.boundAddress,
      logger,
      onName: (name) => {
        if (running === advertisement) currentName = name;
      },
    });
    running = advertisement;
    advertisement.started.catch(() => {
      if (running === advertisement) running = undefined; // failed: the next start() tries again
    });
    return advertisement.started;
  }

  function stop(): Promise<void> {
    stopCount += 1;
    const target = running;
    if (target === undefined) return stopping ?? restarting?.catch(() => {}) ?? Promise.resolve();
    running = undefined;
    const teardownDone: Promise<void> = target
      .stop()
      .then(
        (goodbyeSent) =>
          goodbyeSent
            ? logger.info({ instanceName: currentName }, 'mDNS: stopped advertising (goodbye sent)')
            : logger.info({ instanceName: currentName }, 'mDNS: stopped before the name was announced'),
        (error: unknown) => logger.error({ err: error, instanceName: currentName }, 'mDNS: stopping the advertisement failed'),
      )
      .finally(() => {
        if (stopping === teardownDone) stopping = undefined;
      });
    stopping = teardownDone;
    return teardownDone;
  }

  return {
    start,
    stop,
    get instanceName() {
      return currentName;
    },
  };
}

function validateOptions(options: DiscoveryAdvertiserOptions): void {
  const errors: Array<{ path: string; message: string }> = [];
  // The TCP port range; an NPI is exactly 10 digits (its Luhn check belongs to the configuration).
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65_535) {
    errors.push({ path: 'port', message: 'must be an integer from 1 to 65535' });
  }
  if (!/^\d{10}$/.test(options.organizationNpi)) {
    errors.push({ path: 'organizationNpi', message: 'must be 10 digits' });
  }
  if (errors.length > 0) {
    throw new NeuronError('VALIDATION_FAILED', { message: 'The discovery settings are not valid', errors });
  }
}

/**
 * Interface names pass through (one that does not exist yet is used once it appears; start() warns
 * about it). Addresses become the name of the interface holding them; an address no interface holds
 * is refused.
 */
function resolveInterfaces(requested: readonly string[]): string[] {
  const names: string[] = [];
  for (const entry of requested) {
    const name = interfaceNameFor(entry);
    if (name === undefined) {
      throw new NeuronError('VALIDATION_FAILED', {
        message: 'The discovery settings are not valid',
        errors: [{ path: 'interfaces', message: `no network interface has the address ${entry}` }],
      });
    }
    if (!names.includes(name)) names.push(name);
  }
  return names;
}
