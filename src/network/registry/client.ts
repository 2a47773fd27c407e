/**
 * HTTP client for the Axon registry (shared/spec/registry.md). One method per call of the
 * contract; every failure is a `RegistryError` (./errors.ts) whose `kind` tells the caller what to do:
 *
 * - `unreachable`: no usable answer (network error, timeout, 5xx, 408/429, oversized or malformed
 *   answer). Transient: retry with backoff.
 * - `unauthorized`: 401. The registration is no longer valid (wrong token or unknown id). Never
 *   fixes itself.
 * - `duplicate`: 400 "… already registered". For providers this means done.
 * - `rejected`: any other refusal (Luhn, taxonomy, 3xx/4xx). Retrying the same request is useless.
 * - `aborted`: the caller's signal fired (shutdown). Not a registry fault.
 *
 * Errors carry the registry's status and error text, never the bearer token or registration id
 * (both are scrubbed from anything the registry echoes), and no `cause`, so that logging an error
 * object cannot leak a URL holding the registration id.
 */
import type { TSchema, Static } from 'typebox';
import { DEFAULT_REGISTRY_REQUEST_TIMEOUT_MS } from '../../foundation/config/schema.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { RegistryError, type RegistryOperation } from './errors.ts';
import { compileCheck } from 'neuron-careagent-client/protocol';
import {
  ErrorResponseSchema,
  HeartbeatResponseSchema,
  RegisterNeuronResponseSchema,
  RegisterProviderResponseSchema,
  RegistryEntrySchema,
  SearchResponseSchema,
  type RegistryEntry,
} from './schemas.ts';

// The registry refuses bodies over 1 MB (spec); we send nothing near that and hold its answers to
// the same bound so a misbehaving registry or proxy cannot make us buffer without limit.
export const REGISTRY_MAX_BODY_BYTES = 1024 * 1024;
// Registry error text is kept for logs and status; a bound keeps one answer from flooding them.
const MAX_ERROR_TEXT_CHARS = 500;

export interface RegistryCredentials {
  registrationId: string;
  /** Secret. */
  bearerToken: string;
}

export interface NeuronRegistrationInput {
  organizationNpi: string;
  organizationName: string;
  organizationType: string;
  /** The full public ws(s)://…/ws/handshake URL; Axon hands it to patients verbatim. */
  endpointUrl: string;
}

export interface NeuronRegistration extends RegistryCredentials {
  status: string;
}

export interface ProviderCredential {
  type: 'license' | 'certification' | 'privilege';
  issuer: string;
  identifier: string;
  status: string;
  issuedAt?: string;
  expiresAt?: string;
}

export interface ProviderRegistration {
  npi: string;
  name: string;
  /** Registry taxonomy names, for example `physician`. */
  types: string[];
  specialty?: string;
  credentials?: ProviderCredential[];
}

export interface SearchQuery {
  npi?: string;
  name?: string;
  specialty?: string;
  providerType?: string;
  organization?: string;
  limit?: number;
  offset?: number;
}

export interface RequestOptions {
  /** Cancels the request (the per-request timeout applies regardless). */
  signal?: AbortSignal;
}

export interface AxonClientOptions {
  /** The registry's base URL, for example https://axon.example.org (a path prefix is kept). */
  baseUrl: string;
  requestTimeoutMs?: number;
  maxBodyBytes?: number;
}

interface Answer {
  status: number;
  json: unknown;
}

export class AxonClient {
  readonly baseUrl: string;
  readonly requestTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly #base: URL;

  constructor(options: AxonClientOptions) {
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: 'registry.url', message: 'must be an http(s) URL' }] });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: 'registry.url', message: 'must be an http(s) URL' }] });
    }
    if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`;
    base.search = '';
    base.hash = '';
    this.#base = base;
    this.baseUrl = options.baseUrl;
    this.requestTimeoutMs = positive(options.requestTimeoutMs ?? DEFAULT_REGISTRY_REQUEST_TIMEOUT_MS, 'registry.request_timeout_ms');
    this.maxBodyBytes = positive(options.maxBodyBytes ?? REGISTRY_MAX_BODY_BYTES, 'registry.max_body_bytes');
  }

  /** POST /v1/neurons. Sends every field; refuses locally to send an entry without its endpoint. */
  async registerNeuron(input: NeuronRegistrationInput, options: RequestOptions = {}): Promise<NeuronRegistration> {
    const op = 'register_neuron';
    requireText(op, {
      organization_npi: input.organizationNpi,
      organization_name: input.organizationName,
      organization_type: input.organizationType,
      neuron_endpoint_url: input.endpointUrl,
    });
    const answer = await this.#send(op, 'POST', 'v1/neurons', {
      body: {
        organization_npi: input.organizationNpi,
        organization_name: input.organizationName,
        organization_type: input.organizationType,
        neuron_endpoint_url: input.endpointUrl,
      },
      signal: options.signal,
    });
    const body = this.#expect(op, answer, RegisterNeuronResponseSchema);
    return { registrationId: body.registration_id, bearerToken: body.bearer_token, status: body.status };
  }

  /** PUT /v1/neurons/:id/endpoint: the heartbeat, which also (re)states the handshake URL. */
  async heartbeat(credentials: RegistryCredentials, endpointUrl: string, options: RequestOptions = {}): Promise<{ status: string }> {
    const op = 'heartbeat';
    requireText(op, { neuron_endpoint_url: endpointUrl });
    const answer = await this.#send(op, 'PUT', `v1/neurons/${segment(credentials.registrationId)}/endpoint`, {
      body: { neuron_endpoint_url: endpointUrl },
      credentials,
      signal: options.signal,
    });
    return { status: this.#expect(op, answer, HeartbeatResponseSchema).status };
  }

  /** POST /v1/neurons/:id/providers. A duplicate is thrown as kind `duplicate`; callers treat it as done. */
  async registerProvider(
    credentials: RegistryCredentials,
    provider: ProviderRegistration,
    options: RequestOptions = {},
  ): Promise<{ providerId: string; status: string }> {
    const op = 'register_provider';
    requireText(op, { provider_npi: provider.npi, provider_name: provider.name });
    if (!Array.isArray(provider.types) || provider.types.length === 0) {
      throw new RegistryError(op, 'rejected', { detail: 'provider_types must name at least one type' });
    }
    const body: Record<string, unknown> = {
      provider_npi: provider.npi,
      provider_name: provider.name,
      provider_types: provider.types,
    };
    if (provider.specialty !== undefined) body['specialty'] = provider.specialty;
    if (provider.credentials !== undefined) {
      body['credentials'] = provider.credentials.map((credential) => {
        const wire: Record<string, string> = {
          type: credential.type,
          issuer: credential.issuer,
          identifier: credential.identifier,
          status: credential.status,
        };
        if (credential.issuedAt !== undefined) wire['issued_at'] = credential.issuedAt;
        if (credential.expiresAt !== undefined) wire['expires_at'] = credential.expiresAt;
        return wire;
      });
    }
    const answer = await this.#send(op, 'POST', `v1/neurons/${segment(credentials.registrationId)}/providers`, {
      body,
      credentials,
      signal: options.signal,
    });
    const parsed = this.#expect(op, answer, RegisterProviderResponseSchema);
    return { providerId: parsed.provider_id, status: parsed.status };
  }

  /** DELETE /v1/neurons/:id/providers/:npi. A 404 counts as removed (the goal state holds). */
  async deleteProvider(credentials: RegistryCredentials, npi: string, options: RequestOptions = {}): Promise<void> {
    const op = 'delete_provider';
    requireText(op, { provider_npi: npi });
    await this.#send(op, 'DELETE', `v1/neurons/${segment(credentials.registrationId)}/providers/${segment(npi)}`, {
      credentials,
      signal: options.signal,
      notFoundIsAnswer: true,
    });
  }

  /**
   * POST /v1/agent-cards. A card whose id is taken is thrown as kind `duplicate`. The answer (an
   * echo) is not read: the registry validates nothing, so nothing it returns is trusted.
   */
  async createAgentCard(card: { id: string }, options: RequestOptions = {}): Promise<void> {
    await this.#send('create_agent_card', 'POST', 'v1/agent-cards', { body: card, signal: options.signal });
  }

  /** PUT /v1/agent-cards/:id (merged over the stored card); false when the registry holds no such card. */
  async updateAgentCard(card: { id: string }, options: RequestOptions = {}): Promise<boolean> {
    const answer = await this.#send('update_agent_card', 'PUT', `v1/agent-cards/${segment(card.id)}`, {
      body: card,
      signal: options.signal,
      notFoundIsAnswer: true,
    });
    return answer.status !== 404;
  }

  /** DELETE /v1/agent-cards/:id. A 404 counts as deleted (the goal state holds). */
  async deleteAgentCard(id: string, options: RequestOptions = {}): Promise<void> {
    await this.#send('delete_agent_card', 'DELETE', `v1/agent-cards/${segment(id)}`, { signal: options.signal, notFoundIsAnswer: true });
  }

  /** GET /v1/registry/:npi; null when the registry does not know the NPI. */
  async getEntry(npi: string, options: RequestOptions = {}): Promise<RegistryEntry | null> {
    const op = 'get_entry';
    requireText(op, { npi });
    const answer = await this.#send(op, 'GET', `v1/registry/${segment(npi)}`, { signal: options.signal, notFoundIsAnswer: true });
    if (answer.status === 404) return null;
    return this.#expect(op, answer, RegistryEntrySchema);
  }

  /** GET /v1/registry/search. */
  async search(query: SearchQuery, options: RequestOptions = {}): Promise<RegistryEntry[]> {
    const op = 'search';
    const params = new URLSearchParams();
    const pairs: Array<[string, string | number | undefined]> = [
      ['npi', query.npi],
      ['name', query.name],
      ['specialty', query.specialty],
      ['provider_type', query.providerType],
      ['organization', query.organization],
      ['limit', query.limit],
      ['offset', query.offset],
    ];
    for (const [key, value] of pairs) if (value !== undefined) params.set(key, String(value));
    const suffix = params.size > 0 ? `?${params.toString()}` : '';
    const answer = await this.#send(op, 'GET', `v1/registry/search${suffix}`, { signal: options.signal });
    return this.#expect(op, answer, SearchResponseSchema).results;
  }

  #expect<S extends TSchema>(op: RegistryOperation, answer: Answer, schema: S): Static<S> {
    if (!checkFor(schema)(answer.json)) {
      // A 2xx we cannot use is a registry malfunction, not a verdict on our request.
      throw new RegistryError(op, 'unreachable', { registryStatus: answer.status, detail: 'unexpected answer shape' });
    }
    return answer.json as Static<S>;
  }

  async #send(
    op: RegistryOperation,
    method: string,
    relativePath: string,
    init: { body?: unknown; credentials?: RegistryCredentials; signal?: AbortSignal | undefined; notFoundIsAnswer?: boolean },
  ): Promise<Answer> {
    const secrets = init.credentials ? [init.credentials.bearerToken, init.credentials.registrationId] : [];
    const headers: Record<string, string> = { accept: 'application/json' };
    let payload: string | undefined;
    if (init.body !== undefined) {
      payload = JSON.stringify(init.body);
      if (Buffer.byteLength(payload) > this.maxBodyBytes) {
        throw new RegistryError(op, 'rejected', { detail: `request body larger than ${this.maxBodyBytes} bytes` });
      }
      headers['content-type'] = 'application/json';
    }
    if (init.credentials) headers['authorization'] = `Bearer ${init.credentials.bearerToken}`;

    const callerSignal = init.signal;
    if (callerSignal?.aborted) throw new RegistryError(op, 'aborted', { detail: 'cancelled before sending' });
    // One controller per request, linked by hand to the caller's long-lived signal and unlinked
    // afterwards: AbortSignal.any() on a long-lived signal retains every derived signal on some
    // Node versions (nodejs/node#55351), and a heartbeat runs for months.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.requestTimeoutMs);
    const onCallerAbort = (): void => controller.abort();
    callerSignal?.addEventListener('abort', onCallerAbort, { once: true });

    let status: number;
    let text: string;
    try {
      // redirect: 'manual' so the bearer token is never replayed to wherever a redirect points.
      const response = await fetch(new URL(relativePath, this.#base), {
        method,
        headers,
        body: payload,
        signal: controller.signal,
        redirect: 'manual',
      });
      status = response.status;
      text = await readLimited(response, this.maxBodyBytes);
    } catch (error) {
      if (error instanceof OversizeError) {
        throw new RegistryError(op, 'unreachable', { detail: `answer larger than ${this.maxBodyBytes} bytes` });
      }
      if (callerSignal?.aborted) throw new RegistryError(op, 'aborted', { detail: 'cancelled' });
      if (timedOut) throw new RegistryError(op, 'unreachable', { detail: `timed out after ${this.requestTimeoutMs} ms` });
      throw new RegistryError(op, 'unreachable', { detail: networkDetail(error) });
    } finally {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }

    let json: unknown;
    if (text.length > 0) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if ((status >= 200 && status < 300) || (status === 404 && init.notFoundIsAnswer === true)) return { status, json };

    const registryError = errorText(json, secrets);
    const details = { registryStatus: status, registryError, detail: `HTTP ${status}` };
    if (status === 401) throw new RegistryError(op, 'unauthorized', details);
    if (status === 400 && registryError !== null && /already (registered|exists)/i.test(registryError)) {
      throw new RegistryError(op, 'duplicate', details);
    }
    if (status >= 500 || status === 408 || status === 429) throw new RegistryError(op, 'unreachable', details);
    if (status >= 300 && status < 400) {
      throw new RegistryError(op, 'rejected', { ...details, detail: `HTTP ${status}: unexpected redirect; check registry.url` });
    }
    throw new RegistryError(op, 'rejected', details);
  }
}

class OversizeError extends Error {}

async function readLimited(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw new OversizeError();
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw new OversizeError();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const checks = new Map<TSchema, (value: unknown) => boolean>();

/**
 * The compiled check of one answer schema (ajv, shared with the protocol), compiled on first use:
 * a Neuron with the registry off never pays for it.
 */
function checkFor<S extends TSchema>(schema: S): (value: unknown) => value is Static<S> {
  let check = checks.get(schema);
  if (check === undefined) {
    check = compileCheck(schema);
    checks.set(schema, check);
  }
  return check as (value: unknown) => value is Static<S>;
}

function errorText(json: unknown, secrets: string[]): string | null {
  if (!checkFor(ErrorResponseSchema)(json)) return null;
  let text = json.error;
  for (const secret of secrets) {
    if (secret.length > 0) text = text.replaceAll(secret, '[redacted]');
  }
  return text.length > MAX_ERROR_TEXT_CHARS ? `${text.slice(0, MAX_ERROR_TEXT_CHARS)}…` : text;
}

function networkDetail(error: unknown): string {
  // fetch wraps the socket error as `cause`; its code (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET…)
  // says enough and, unlike some messages, never holds the request URL.
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return 'network error';
}

function requireText(op: RegistryOperation, fields: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string' || value.trim() === '') {
      throw new RegistryError(op, 'rejected', { detail: `${name} is required` });
    }
  }
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: name, message: 'must be a positive number' }] });
  }
  return value;
}

/** A provider as the registry integration is given it (types.ts re-exports it). */
export interface ProviderInput {
  npi: string;
  name: string;
  /** Registry taxonomy names, for example `physician`. */
  types: string[];
  specialty?: string;
  credentials?: ProviderCredential[];
}
