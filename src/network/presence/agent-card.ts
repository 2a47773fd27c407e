/**
 * The organization's agent card as the Neuron's presence handles it: what it is built from (the
 * configuration's `services`, the organization and its public addresses), the form it is served
 * in at /.well-known/agent-card.json, and its removal from the registry at a registration reset.
 */
import { createHash } from 'node:crypto';
import type { NeuronConfig } from '../../foundation/config/index.ts';
import {
  agentCardFingerprint,
  agentCardId,
  AxonClient,
  buildAgentCard,
  isRegistryError,
  type AgentCard,
  type AgentCardSource,
  type DatabaseRegistryStateStore,
} from '../registry/index.ts';

/** The agent card as served: built once per refresh, serialized once, with its entity tag. */
export interface ServedAgentCard {
  card: AgentCard;
  json: string;
  etag: string;
}

/** What `resetRegistration` did with the organization's agent card in the registry. */
export type AgentCardReset = 'removed' | 'none_published' | { left: string };

/** What the agent card is built from: the configuration's `services`, the organization and its addresses. */
export function agentCardSourceFor(options: {
  config: NeuronConfig;
  handshakeUrl: string;
  publicUrl: string;
  version: string;
}): AgentCardSource {
  const { config } = options;
  return {
    id: agentCardId(config.organization.npi),
    build: (roster) =>
      buildAgentCard({
        organization: config.organization,
        services: config.services,
        handshakeUrl: options.handshakeUrl,
        publicUrl: options.publicUrl,
        version: options.version,
        roster,
      }),
  };
}

export function serveCard(card: AgentCard): ServedAgentCard {
  const json = JSON.stringify(card);
  return { card, json, etag: `"${createHash('sha256').update(json).digest('base64url').slice(0, 27)}"` };
}

export async function removeAgentCard(
  store: DatabaseRegistryStateStore,
  registryUrl: string | null,
  config: Pick<NeuronConfig, 'registry' | 'organization'>,
): Promise<AgentCardReset> {
  const published = await store.loadAgentCardFingerprint().catch(() => null);
  if (published === null || published === agentCardFingerprint(null)) return 'none_published';
  if (registryUrl === null) return { left: 'no registry URL is configured' };
  try {
    const client = new AxonClient({ baseUrl: registryUrl, requestTimeoutMs: config.registry.request_timeout_ms });
    await client.deleteAgentCard(agentCardId(config.organization.npi));
  } catch (error) {
    return { left: isRegistryError(error) ? error.describe() : 'the registry could not be reached' };
  }
  await store.saveAgentCardFingerprint(agentCardFingerprint(null));
  return 'removed';
}
