/**
 * Small pure helpers shared by the registry integration's two halves (registration.ts and
 * provider-sync.ts).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { NeuronError } from '../../foundation/errors/index.ts';
import { HANDSHAKE_PATH } from 'neuron-careagent-client/protocol';
import type { RetryPolicy } from '../../foundation/outbound/index.ts';
import type { RegistryCredentials } from './client.ts';
import type { RegistrationRecord } from './state.ts';
import type { ProviderInput, RegistryServiceOptions } from './types.ts';

// The registry marks an endpoint stale this long after its last heartbeat (spec), and then
// refuses patients a grant. Every heartbeat setting has to keep us inside it.
export const REGISTRY_STALE_AFTER_MS = 5 * 60_000;

export const NPI_SHAPE = /^\d{10}$/;

/** A short, stable, non-reversible reference to a registration id, for logs and audit. */
export function registrationRef(registrationId: string): string {
  return createHash('sha256').update(registrationId).digest('hex').slice(0, 12);
}

export function credentialsOf(record: RegistrationRecord): RegistryCredentials {
  return { registrationId: record.registrationId, bearerToken: record.bearerToken };
}

export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await sleepFor(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

export function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}

export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || hostname.startsWith('127.');
}

/** Identifies a provider's details, to tell a resubmission of the same refused entry from a corrected one. */
export function fingerprint(provider: ProviderInput): string {
  return JSON.stringify([provider.npi, provider.name, provider.types, provider.specialty ?? null, provider.credentials ?? null]);
}

export function copyProvider(provider: ProviderInput): ProviderInput {
  return structuredClone(provider);
}

export function validateProvider(provider: ProviderInput, at: string): void {
  const errors: Array<{ path: string; message: string }> = [];
  if (typeof provider.npi !== 'string' || !NPI_SHAPE.test(provider.npi))
    errors.push({ path: `${at}.npi`, message: 'must be a ten-digit NPI' });
  if (typeof provider.name !== 'string' || provider.name.trim() === '') errors.push({ path: `${at}.name`, message: 'is required' });
  if (
    !Array.isArray(provider.types) ||
    provider.types.length === 0 ||
    provider.types.some((type) => typeof type !== 'string' || type === '')
  ) {
    errors.push({ path: `${at}.types`, message: 'must list at least one provider type' });
  }
  if (errors.length > 0) throw new NeuronError('VALIDATION_FAILED', { errors });
}

export function validateOptions(options: RegistryServiceOptions, heartbeatIntervalMs: number, backoff: RetryPolicy): void {
  const errors: Array<{ path: string; message: string }> = [];
  if (!Number.isFinite(heartbeatIntervalMs) || heartbeatIntervalMs <= 0 || heartbeatIntervalMs >= REGISTRY_STALE_AFTER_MS) {
    errors.push({
      path: 'registry.heartbeat_interval_ms',
      message: `must be above 0 and below the registry's ${REGISTRY_STALE_AFTER_MS} ms staleness window`,
    });
  }
  if (!Number.isFinite(backoff.initialMs) || backoff.initialMs <= 0)
    errors.push({ path: 'registry.backoff_initial_ms', message: 'must be above 0' });
  if (!Number.isFinite(backoff.maxMs) || backoff.maxMs < backoff.initialMs) {
    errors.push({ path: 'registry.backoff_max_ms', message: 'must be at least registry.backoff_initial_ms' });
  }
  try {
    const registry = new URL(options.registryUrl);
    if (registry.protocol !== 'http:' && registry.protocol !== 'https:') throw new Error('protocol');
  } catch {
    errors.push({ path: 'registry.url', message: "must be the registry's http(s) URL" });
  }
  try {
    const endpoint = new URL(options.endpointUrl);
    if (endpoint.protocol !== 'ws:' && endpoint.protocol !== 'wss:') throw new Error('protocol');
    if (!endpoint.pathname.endsWith(HANDSHAKE_PATH)) throw new Error('path');
  } catch {
    errors.push({ path: 'endpointUrl', message: 'must be the full public ws(s)://…/ws/handshake URL' });
  }
  const organization = options.organization;
  if (typeof organization?.npi !== 'string' || !NPI_SHAPE.test(organization.npi))
    errors.push({ path: 'organization.npi', message: 'must be a ten-digit NPI' });
  if (typeof organization?.name !== 'string' || organization.name.trim() === '')
    errors.push({ path: 'organization.name', message: 'is required' });
  if (typeof organization?.type !== 'string' || organization.type.trim() === '')
    errors.push({ path: 'organization.type', message: 'is required' });
  if (errors.length > 0) throw new NeuronError('VALIDATION_FAILED', { errors });
}
