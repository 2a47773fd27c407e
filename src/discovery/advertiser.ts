/**
 * Advertises this Neuron on the local network over mDNS/DNS-SD with @homebridge/ciao, a
 * maintained responder that probes for name conflicts (RFC 6762 section 8), announces, answers
 * queries and sends goodbye packets.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { getResponder, type CiaoService, type Responder } from '@homebridge/ciao';
import { NeuronError } from '../errors/index.ts';
import {
  NEURON_SERVICE_TYPE,
  NEURON_SERVICE_TYPE_LABEL,
  buildTxtRecord,
  deriveHostname,
  sanitizeInstanceName,
} from './records.ts';
import type { DiscoveryAdvertiser, DiscoveryAdvertiserOptions, DiscoveryLogger } from './types.ts';

interface Running {
  responder: Responder;
  service: CiaoService;
  /** Settles when probing is over (or was cancelled by stop). */
  advertised: Promise<void>;
  /** True once the name was probed unique and announcing began. */
  announced: boolean;
}

export function createDiscoveryAdvertiser(options: DiscoveryAdvertiserOptions): DiscoveryAdvertiser {
  validateOptions(options);
  const { logger } = options;
  const requestedName = sanitizeInstanceName(options.instanceName);
  const hostname = deriveHostname(requestedName);
  const txt = buildTxtRecord(options);
  const interfaces = resolveInterfaces(options.interfaces ?? [], logger);

  let currentName = requestedName;
  let running: Running | undefined;
  /** The teardown under way, if any. */
  let stopping: Promise<void> | undefined;
  /** A start() waiting for that teardown to finish. */
  let restarting: Promise<void> | undefined;
  /** Bumped by every stop(), so a start() waiting on an older teardown knows it was cancelled. */
  let stopCount = 0;

  function start(): Promise<void> {
    if (running !== undefined) return running.advertised;
    if (restarting !== undefined) return restarting;
    if (stopping !== undefined) {
      const stopsSoFar = stopCount;
      restarting = stopping.then(() => {
        restarting = undefined;
        return stopCount === stopsSoFar ? start() : undefined;
      });
      return restarting;
    }
    try {
      return launch();
    } catch (error) {
      // ciao asserts synchronously on options it dislikes; keep start()'s contract a promise.
      return Promise.reject(error);
    }
  }

  /** Creates and advertises the service; synchronous up to advertise(), so stop() always sees it. */
  function launch(): Promise<void> {
    // ciao shares one responder (one set of sockets) between callers with the same options and
    // counts references, so each advertiser takes one and gives it back in stop().
    const responder = getResponder(interfaces.length > 0 ? { interface: [...interfaces] } : {});
    const service = responder.createService({
      name: requestedName,
      type: NEURON_SERVICE_TYPE,
      port: options.port,
      hostname,
      txt,
    });
    currentName = requestedName;
    service.on('name-change', (name: string) => {
      logger.warn(
        { requestedName, instanceName: name, serviceType: NEURON_SERVICE_TYPE_LABEL },
        'mDNS: the instance name is taken on the local network; advertising under a new name',
      );
      currentName = name;
    });
    service.on('hostname-change', (newHostname: string) => {
      logger.warn({ mdnsHostname: newHostname }, 'mDNS: the host name is taken on the local network; using a new one');
    });

    logger.debug({ instanceName: requestedName, mdnsHostname: hostname, interfaces }, 'mDNS: probing the instance name');
    const self: Running = {
      responder,
      service,
      announced: false,
      advertised: service.advertise().then(
        () => {
          // A stop() during probing cancels it and advertise() resolves: nothing was announced.
          if (running !== self) return;
          self.announced = true;
          logger.info(
            {
              instanceName: currentName,
              serviceType: NEURON_SERVICE_TYPE_LABEL,
              port: options.port,
              interfaces: interfaces.length > 0 ? interfaces : 'auto',
              txt,
            },
            'mDNS: advertising the Neuron on the local network',
          );
        },
        async (error: unknown) => {
          logger.error({ err: error, instanceName: currentName }, 'mDNS: advertising failed');
          if (running === self) {
            running = undefined;
            await teardown(self);
          }
          throw error;
        },
      ),
    };
    running = self;
    return self.advertised;
  }

  async function teardown(target: Running): Promise<void> {
    try {
      // destroy() first ends the service: goodbye packets (its records again with TTL 0, RFC 6762
      // section 10.1) when it was announced, or cancelled probing when it was not.
      await target.service.destroy();
    } finally {
      // Closes the sockets once no other advertiser in this process shares the responder.
      await target.responder.shutdown();
    }
  }

  function stop(): Promise<void> {
    stopCount += 1;
    const target = running;
    if (target === undefined) return stopping ?? restarting?.catch(() => {}) ?? Promise.resolve();
    running = undefined;
    const teardownDone: Promise<void> = teardown(target)
      .then(
        () =>
          target.announced
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
 * Interface names pass through (an absent one is advertised on once it appears; ciao re-reads the
 * interfaces every 15 seconds). Addresses become the name of the interface holding them, because
 * ciao only logs to the console and then advertises everywhere when it cannot resolve one.
 */
function resolveInterfaces(requested: readonly string[], logger: DiscoveryLogger): string[] {
  const current = networkInterfaces();
  const names: string[] = [];
  for (const entry of requested) {
    let name: string | undefined = entry;
    if (isIP(entry) !== 0) {
      name = Object.entries(current).find(([, infos]) => (infos ?? []).some((info) => info.address === entry))?.[0];
      if (name === undefined) {
        throw new NeuronError('VALIDATION_FAILED', {
          message: 'The discovery settings are not valid',
          errors: [{ path: 'interfaces', message: `no network interface has the address ${entry}` }],
        });
      }
    } else if (!(entry in current)) {
      logger.warn({ interface: entry }, 'mDNS: the configured network interface does not exist (yet); it is used once it appears');
    }
    if (!names.includes(name)) names.push(name);
  }
  return names;
}
