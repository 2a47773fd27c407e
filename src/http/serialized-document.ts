/**
 * A JSON document served from bytes serialized once, with a strong ETag (a SHA-256 of those
 * bytes) so that a client that has it already is answered 304 without a body. Used for
 * /openapi.json: the document cannot change while the process runs (routes are fixed once the
 * server is ready), and generating and serializing it per request cost enough CPU for one
 * anonymous client to starve the handshakes.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Caches may keep it, but must ask again before using it (`no-cache`): after an upgrade the next
 * request sees the new document, and asking is a 304 with no body while nothing changed.
 */
const CACHE_CONTROL = 'public, no-cache';

interface Serialized {
  document: Record<string, unknown>;
  bytes: Buffer;
  etag: string;
}

export class SerializedDocument {
  readonly #build: () => Record<string, unknown>;
  #serialized: Serialized | undefined;

  /** @param build makes the document; called once, on the first request. */
  constructor(build: () => Record<string, unknown>) {
    this.#build = build;
  }

  #get(): Serialized {
    if (this.#serialized === undefined) {
      const document = this.#build();
      const bytes = Buffer.from(JSON.stringify(document), 'utf8');
      const etag = `"${createHash('sha256').update(bytes).digest('base64url')}"`;
      this.#serialized = { document, bytes, etag };
    }
    return this.#serialized;
  }

  /** The document as served (the same object every time; do not modify it). */
  document(): Record<string, unknown> {
    return this.#get().document;
  }

  etag(): string {
    return this.#get().etag;
  }

  /** Answers 200 with the bytes, or 304 when If-None-Match names the current ETag (or `*`). */
  send(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const { bytes, etag } = this.#get();
    void reply.header('etag', etag).header('cache-control', CACHE_CONTROL);
    if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(bytes);
  }
}

/** If-None-Match uses the weak comparison (RFC 9110 13.1.2): `W/"x"` matches `"x"`. */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const wanted = header.trim();
  if (wanted === '*') return true;
  return wanted.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag);
}
