/**
 * Schemas shared by every REST route: the problem document, pagination, and small field types.
 * Routes build their list schemas with `pageQuery` / `Page` so every list in the API pages the
 * same way: `?limit=&after=` in, `{ items, next }` out.
 */
import Type, { type TProperties, type TSchema } from 'typebox';
import { ERROR_CATALOGUE } from '../errors/index.ts';

export const PROBLEM_CODES = Object.keys(ERROR_CATALOGUE);

/** RFC 9457 problem details with the catalogue code (docs/errors.md). */
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'Stable URI of the problem type; its fragment is documented in docs/errors.md' }),
    title: Type.String(),
    status: Type.Integer({ minimum: 100, maximum: 599 }),
    detail: Type.String(),
    code: Type.String({ enum: PROBLEM_CODES, description: 'Stable machine-readable code from the error catalogue' }),
    instance: Type.Optional(Type.String({ description: 'The request path' })),
    request_id: Type.Optional(Type.String({ description: "The request id, as in the X-Request-Id response header and the Neuron's log" })),
    reason: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String({ description: 'The offending field, for example `body.reason` or `query.limit`' }),
          message: Type.String(),
        }),
      ),
    ),
  },
  { description: 'An RFC 9457 problem document (application/problem+json)' },
);

/** Milliseconds-precision UTC timestamps, as stored. */
export const Timestamp = Type.String({ format: 'date-time', description: 'ISO-8601 UTC time' });
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const Npi = Type.String({ pattern: '^[0-9]{10}$', description: 'ten-digit NPI' });

/** The handshake protocol's patient agent id shape: 1 to 256 visible ASCII characters. */
export const PatientAgentId = Type.String({
  minLength: 1,
  maxLength: 256,
  pattern: '^[\\x21-\\x7E]+$',
  description: 'the patient CareAgent id',
});

/** Free text a person types (reasons, labels shown to operators): no control characters. */
export function text(maxLength: number, description?: string) {
  return Type.String({ minLength: 1, maxLength, pattern: '^[^\\u0000-\\u001F\\u007F]+$', ...(description ? { description } : {}) });
}

export const ReasonBody = Type.Object({ reason: text(500, 'why; kept in the audit log') }, { additionalProperties: false });

export const Cursor = Type.String({
  minLength: 1,
  maxLength: 512,
  pattern: '^[A-Za-z0-9_-]+$',
  description: 'the `next` value of the previous page',
});

export interface PageLimits {
  page_size_default: number;
  page_size_max: number;
}

/** `limit` and `after` plus the route's own filters; unknown query parameters are refused. */
export function pageQuery<T extends TProperties>(limits: PageLimits, filters: T) {
  return Type.Object(
    {
      ...filters,
      limit: Type.Integer({
        minimum: 1,
        maximum: limits.page_size_max,
        default: limits.page_size_default,
        description: `items per page (1-${limits.page_size_max})`,
      }),
      after: Type.Optional(Cursor),
    },
    { additionalProperties: false },
  );
}

/** `{ items, next }`; `next` is null on the last page. */
export function Page<T extends TSchema>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    next: Type.Union([Type.String(), Type.Null()], {
      description: 'pass as `after` for the following page; null when this is the last page',
    }),
  });
}

/** Route params, one named string. */
export function params<N extends string, T extends TSchema>(name: N, schema: T) {
  return Type.Object({ [name]: schema } as { [K in N]: T }, { additionalProperties: false });
}

/**
 * Problem responses a route can give besides the common ones (400, 401, 403, 429 are added for
 * every route by the documentation transform): `problems({ 404: 'no such relationship' })`.
 */
export function problems(statuses: Record<number, string>): Record<number, unknown> {
  return Object.fromEntries(
    Object.entries(statuses).map(([status, description]) => [
      status,
      { description, content: { 'application/problem+json': { schema: Problem } } },
    ]),
  );
}

/** For routes that take no query parameters: any is refused (a typo never passes silently). */
export const NoQuery = Type.Object({}, { additionalProperties: false });
