/**
 * The provider CareAgent's side (docs/providers.md): read the pull feed of relationship notices
 * with the provider credential. Checking a pushed notice's signature (verifyProviderNotice) and a
 * patient's attestation (verifyAttestation) are pure and live in the protocol layer.
 */
import Type from 'typebox';
import { PROTOCOL_BOUNDS as B, SignedPayloadSchema, compileCheck, type RelationshipNotice } from '../protocol/index.ts';

/** A feed page is at most a few hundred notices of a few KiB each; a Neuron answers in well under this. */
export const DEFAULT_FEED_TIMEOUT_MS = 30_000;

export interface ReadFeedOptions {
  /** The Neuron's base URL, such as https://neuron.example.org (its REST API). */
  neuronUrl: string;
  /** This provider's NPI. */
  npi: string;
  /** The provider credential (`nprv_…`) issued at approval. */
  credential: string;
  /** The `next` cursor of the previous page; asking after it acknowledges every notice up to it. */
  after?: string | null;
  /** Notices per page (the Neuron caps it). */
  limit?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface FeedPage {
  /** The notices in the order they were written, exactly as pushed. */
  items: RelationshipNotice[];
  /** Pass this as `after` next time (the cursor you sent when nothing new arrived). */
  next: string | null;
  /** More notices follow right away. */
  hasMore: boolean;
}

/** Failures of a feed read: the Neuron's problem code (UNAUTHENTICATED, NOT_FOUND, …) or one seen only here. */
export type FeedFailureCode = 'CONNECTION_FAILED' | 'CLIENT_TIMEOUT' | 'UNEXPECTED_RESPONSE';

export class FeedError extends Error {
  /** The problem document's code, or a FeedFailureCode. */
  readonly code: FeedFailureCode | (string & {});
  /** The HTTP status, when the Neuron answered. */
  readonly status: number | undefined;

  constructor(code: FeedFailureCode | (string & {}), message: string, details: { status?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'FeedError';
    this.code = code;
    this.status = details.status;
  }
}

const NoticeSchema = Type.Object(
  {
    event_id: Type.String(),
    relationship_id: Type.String(),
    patient_agent_id: Type.String(),
    patient_public_key: Type.String(),
    patient_endpoint: Type.String(),
    consented_actions: Type.Array(Type.String(), { maxItems: B.actionsMaxCount }),
    established_at: Type.String(),
    attestation: SignedPayloadSchema,
  },
  { additionalProperties: true },
);
const FeedAnswerSchema = Type.Object({
  items: Type.Array(NoticeSchema),
  next: Type.Union([Type.String(), Type.Null()]),
  has_more: Type.Boolean(),
});
const checkFeedAnswer = compileCheck(FeedAnswerSchema);

function feedUrl(options: ReadFeedOptions): URL {
  const url = new URL(
    `v1/providers/${encodeURIComponent(options.npi)}/relationships`,
    options.neuronUrl.endsWith('/') ? options.neuronUrl : `${options.neuronUrl}/`,
  );
  if (options.after !== undefined && options.after !== null) url.searchParams.set('after', options.after);
  if (options.limit !== undefined) url.searchParams.set('limit', String(options.limit));
  return url;
}

/**
 * Reads one page of this provider's relationship notices. Resolves with the page or rejects with
 * a FeedError. Check each notice's attestation with verifyAttestation before trusting it, and
 * drop an `event_id` already processed (delivery is at least once).
 */
export async function readProviderFeed(options: ReadFeedOptions): Promise<FeedPage> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_FEED_TIMEOUT_MS);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  let response: Response;
  try {
    response = await fetch(feedUrl(options), {
      headers: { authorization: `Bearer ${options.credential}`, accept: 'application/json' },
      signal,
      redirect: 'error',
    });
  } catch (error) {
    if (timeout.aborted) throw new FeedError('CLIENT_TIMEOUT', 'the Neuron did not answer in time', { cause: error });
    throw new FeedError('CONNECTION_FAILED', 'could not reach the Neuron', { cause: error });
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    throw new FeedError('UNEXPECTED_RESPONSE', `the Neuron's answer (HTTP ${response.status}) is not JSON`, {
      status: response.status,
      cause: error,
    });
  }
  if (!response.ok) {
    const problem = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown; detail?: unknown };
    const code = typeof problem.code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(problem.code) ? problem.code : 'UNEXPECTED_RESPONSE';
    const message =
      typeof problem.detail === 'string' && problem.detail.length <= 256
        ? problem.detail
        : `the Neuron refused the feed read (HTTP ${response.status})`;
    throw new FeedError(code, message, { status: response.status });
  }
  if (!checkFeedAnswer(body))
    throw new FeedError('UNEXPECTED_RESPONSE', "the Neuron's feed answer does not have the documented shape", { status: response.status });
  return { items: body.items as RelationshipNotice[], next: body.next, hasMore: body.has_more };
}
