/**
 * Keeps the organization's agent card in the registry in step with what the Neuron offers: the
 * card is rebuilt whenever the roster is read (at start, every heartbeat, and when the roster
 * changes), sent when it differs from what last got through, and deleted when the configuration no
 * longer lists any capability. Sent only while the organization is registered; retried with the
 * registry's backoff while the registry is unreachable, like heartbeats.
 *
 * Each term of the registry client (a start, or another instance taking over) sends the card once
 * even when nothing changed, so a registry that lost or was sent a tampered card (its card routes
 * take no authentication) gets ours back within a restart or a fail-over.
 */
import { retryDelayMs } from '../../foundation/outbound/index.ts';
import { agentCardFingerprint, type AgentCard } from './agent-card.ts';
import { isRegistryError } from './errors.ts';
import { requireClient, type Registration } from './registration.ts';
import { sleep } from './support.ts';
import type { AgentCardSource, ProviderInput, RegistryRuntime } from './types.ts';

/** What `#sent` holds before this term has sent anything but the registry may hold a card of ours. */
const UNKNOWN_CARD = 'unknown';
const NO_CARD = agentCardFingerprint(null);

type Outcome = 'done' | 'unreachable' | 'stopped';

export class AgentCardPublisher {
  readonly #runtime: RegistryRuntime;
  readonly #registration: Registration;
  readonly #id: string;
  readonly #build: (roster: readonly ProviderInput[]) => AgentCard | null;
  /** The card wanted now; undefined until the roster was first read. */
  #desired: AgentCard | null | undefined = undefined;
  /** Fingerprint of what the registry holds as far as we know. */
  #sent: string | null = null;
  #wake: (() => void) | null = null;

  constructor(options: { runtime: RegistryRuntime; registration: Registration; card: AgentCardSource }) {
    this.#runtime = options.runtime;
    this.#registration = options.registration;
    this.#id = options.card.id;
    this.#build = options.card.build;
  }

  /** The roster was read: the card is rebuilt from it and sent if it changed. */
  rosterRead(roster: readonly ProviderInput[]): void {
    this.#desired = this.#build(roster);
    this.#wake?.();
  }

  /** Registered, or the registry is reachable again. */
  wake(): void {
    this.#wake?.();
  }

  async loop(signal: AbortSignal): Promise<void> {
    const stored = await this.#loadSent();
    this.#sent = stored === null || stored === NO_CARD ? NO_CARD : UNKNOWN_CARD;
    let failures = 0;
    while (!signal.aborted) {
      const desired = this.#desired;
      if (this.#registration.state !== 'registered' || desired === undefined || agentCardFingerprint(desired) === this.#sent) {
        await this.#idle(signal);
        continue;
      }
      const outcome = await this.#attempt(desired, signal);
      if (outcome === 'stopped') return;
      if (outcome === 'unreachable') {
        failures += 1;
        // Like heartbeats: never wait longer than one heartbeat interval between probes.
        const policy = {
          initialMs: Math.min(this.#runtime.backoff.initialMs, this.#runtime.heartbeatIntervalMs),
          maxMs: Math.min(this.#runtime.backoff.maxMs, this.#runtime.heartbeatIntervalMs),
        };
        if (!(await sleep(retryDelayMs(failures, policy, this.#runtime.random), signal))) return;
      } else {
        failures = 0;
      }
    }
  }

  async #attempt(card: AgentCard | null, signal: AbortSignal): Promise<Outcome> {
    const client = requireClient(this.#runtime);
    const fingerprint = agentCardFingerprint(card);
    try {
      if (card === null) {
        await client.deleteAgentCard(this.#id, { signal });
      } else if (!(await client.updateAgentCard(card, { signal }))) {
        await this.#create(card, signal);
      }
    } catch (error) {
      if (!isRegistryError(error)) throw error;
      if (error.kind === 'aborted' || signal.aborted) return 'stopped';
      if (error.kind === 'unreachable') {
        this.#runtime.log.warn(
          { component: 'registry', operation: error.operation, error: error.describe() },
          'registry unreachable; the agent card will be sent again',
        );
        return 'unreachable';
      }
      // Refused: the same card would be refused again; it is sent again once it changes.
      this.#sent = fingerprint;
      this.#runtime.log.error(
        { component: 'registry', operation: error.operation, error: error.describe() },
        'the registry refused the agent card',
      );
      await this.#runtime.audit('registry.agent_card_refused', {
        operation: error.operation,
        registryStatus: error.registryStatus,
        registryError: error.registryError,
      });
      return 'done';
    }
    this.#sent = fingerprint;
    await this.#saveSent(fingerprint);
    const removed = card === null;
    this.#runtime.log.info(
      { component: 'registry', card: this.#id },
      removed ? 'agent card removed from the registry' : 'agent card published to the registry',
    );
    await this.#runtime.audit(removed ? 'registry.agent_card_removed' : 'registry.agent_card_published', {
      card: this.#id,
      ...(card !== null ? { url: card.url, capabilities: card.capabilities.map((capability) => capability.name) } : {}),
    });
    return 'done';
  }

  /** POST, or PUT when the id turned out to be taken meanwhile (another instance created it). */
  async #create(card: AgentCard, signal: AbortSignal): Promise<void> {
    const client = requireClient(this.#runtime);
    try {
      await client.createAgentCard(card, { signal });
    } catch (error) {
      if (!isRegistryError(error) || error.kind !== 'duplicate') throw error;
      await client.updateAgentCard(card, { signal });
    }
  }

  async #loadSent(): Promise<string | null> {
    try {
      return (await this.#runtime.options.store.loadAgentCardFingerprint?.()) ?? null;
    } catch {
      return null;
    }
  }

  async #saveSent(fingerprint: string): Promise<void> {
    try {
      await this.#runtime.options.store.saveAgentCardFingerprint?.(fingerprint);
    } catch (error) {
      // Only costs a redundant request after a restart.
      this.#runtime.log.warn(
        { component: 'registry', error: error instanceof Error ? error.message : String(error) },
        'could not record the published agent card',
      );
    }
  }

  #idle(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
