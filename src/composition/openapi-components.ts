/**
 * The named schemas of the OpenAPI document (`components.schemas`) and the step that refers to
 * them: the routes keep declaring their schemas inline (fastify validates and serializes with
 * them as they are, with no shared-schema registry to keep in step), and the generated document
 * has every copy of a named schema replaced by a `$ref` to its one definition. A client generator
 * then produces one named type per entity (`components['schemas']['Provider']`) instead of an
 * anonymous copy per route, and the document stays small.
 *
 * A schema is lifted when it is identical, after @fastify/swagger's conversion, to a schema named
 * here; a route that changes its copy (another description, a field more) keeps it inline, and the
 * document test fails if a name below is no longer used anywhere.
 */
import type { TSchema } from 'typebox';
import { Problem } from '../foundation/rest/schemas.ts';
import { RelationshipSchema } from '../domains/relationships/routes.ts';
import { PatientSchema, ProfileSchema } from '../domains/directory/routes.ts';
import { BlockSchema } from '../domains/blocks/routes.ts';
import { AuditEventSchema } from '../domains/audit/routes.ts';
import { WebhookSchema } from '../domains/webhooks/routes.ts';
import { ApiKeySchema } from '../domains/api-keys/routes.ts';
import { OrganizationSchema, StatusSchema } from '../domains/status/index.ts';
import { CredentialSchema, ProviderView, RelationshipNotice } from '../domains/providers/schemas.ts';
import { OutboxNoticeView } from '../domains/outbox/routes.ts';

/** Name in `components.schemas` → the schema the routes use. The larger ones first. */
export const COMPONENT_SCHEMAS: Readonly<Record<string, TSchema>> = {
  Problem,
  Organization: OrganizationSchema,
  Relationship: RelationshipSchema,
  Patient: PatientSchema,
  PatientProfile: ProfileSchema,
  Block: BlockSchema,
  AuditEvent: AuditEventSchema,
  Webhook: WebhookSchema,
  ApiKey: ApiKeySchema,
  Status: StatusSchema,
  Provider: ProviderView,
  ProviderCredential: CredentialSchema,
  RelationshipNotice,
  OutboxNotice: OutboxNoticeView,
};

/**
 * Problem answers most operations give alike, by status, named in `components.responses`: the
 * form most operations share is named, an operation's own variant (another description) stays.
 */
const COMMON_RESPONSES: Readonly<Record<string, string>> = {
  400: 'InvalidRequest',
  401: 'Unauthenticated',
  403: 'Forbidden',
  413: 'BodyTooLarge',
  415: 'UnsupportedMediaType',
  429: 'RateLimited',
};

const REF_PREFIX = '#/components/schemas/';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON with object keys sorted: equal for schemas that differ only in key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value))
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/**
 * Replaces, top down, every object whose canonical form is in `named` by a reference to it. A
 * replaced object is not descended into; `skip` is left as it is (a component's own root).
 */
function replaceNamed(node: unknown, named: Map<string, string>, skip?: unknown): unknown {
  if (Array.isArray(node)) return node.map((item) => replaceNamed(item, named));
  if (!isObject(node)) return node;
  if (node !== skip) {
    const name = named.get(canonical(node));
    if (name !== undefined) return { $ref: `${REF_PREFIX}${name}` };
  }
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) out[key] = replaceNamed(value, named);
  return out;
}

/** `{ items: [X], next }` (the shape every list answers with) whose items are a named X. */
function pageItemName(node: Json): string | undefined {
  const properties = node['properties'];
  if (node['type'] !== 'object' || !isObject(properties)) return undefined;
  const keys = Object.keys(properties).sort().join(',');
  if (keys !== 'items,next') return undefined;
  const items = properties['items'];
  if (!isObject(items) || items['type'] !== 'array' || !isObject(items['items'])) return undefined;
  const ref = items['items']['$ref'];
  return typeof ref === 'string' && ref.startsWith(REF_PREFIX) ? ref.slice(REF_PREFIX.length) : undefined;
}

/** Names each list answer `<Item>Page` (one shape per name; a second, different shape stays inline). */
function liftPages(node: unknown, schemas: Json): unknown {
  if (Array.isArray(node)) return node.map((item) => liftPages(item, schemas));
  if (!isObject(node)) return node;
  const item = pageItemName(node);
  if (item !== undefined) {
    const name = `${item}Page`;
    if (schemas[name] === undefined) schemas[name] = node;
    if (canonical(schemas[name]) === canonical(node)) return { $ref: `${REF_PREFIX}${name}` };
  }
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) out[key] = liftPages(value, schemas);
  return out;
}

/** Every `$ref` target name in a part of the document. */
function referencedNames(node: unknown, into: Set<string>): Set<string> {
  if (Array.isArray(node)) for (const item of node) referencedNames(item, into);
  else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && value.startsWith(REF_PREFIX)) into.add(value.slice(REF_PREFIX.length));
      else referencedNames(value, into);
    }
  }
  return into;
}

/**
 * The document with the schemas named in `components.schemas` (as @fastify/swagger converted them
 * from COMPONENT_SCHEMAS) referenced instead of repeated, list answers named `<Item>Page`, and
 * names nothing refers to dropped. `document` is not modified.
 */
export function referenceComponents(document: Json): Json {
  const components = isObject(document['components']) ? document['components'] : {};
  const declared = isObject(components['schemas']) ? components['schemas'] : {};
  const named = new Map<string, string>();
  for (const [name, schema] of Object.entries(declared)) if (!named.has(canonical(schema))) named.set(canonical(schema), name);

  const schemas: Json = {};
  for (const [name, schema] of Object.entries(declared)) schemas[name] = replaceNamed(schema, named, schema);
  const rest: Json = {};
  for (const [key, value] of Object.entries(document)) if (key !== 'components') rest[key] = liftPages(replaceNamed(value, named), schemas);

  // Keep what the operations, webhooks and other components refer to (transitively).
  const used = referencedNames(rest, new Set());
  for (let grew = true; grew; ) {
    const before = used.size;
    for (const name of [...used]) referencedNames(schemas[name], used);
    grew = used.size > before;
  }
  const kept: Json = {};
  for (const name of Object.keys(schemas).sort()) if (used.has(name)) kept[name] = schemas[name];
  const responses = referenceResponses(rest['paths']);
  return { ...rest, components: { ...components, ...(Object.keys(responses).length > 0 ? { responses } : {}), schemas: kept } };
}

/** Operations of a `paths` object, as [responses object] to rewrite in place. */
function responseObjects(paths: unknown): Json[] {
  const found: Json[] = [];
  if (!isObject(paths)) return found;
  for (const item of Object.values(paths)) {
    if (!isObject(item)) continue;
    for (const operation of Object.values(item))
      if (isObject(operation) && isObject(operation['responses'])) found.push(operation['responses']);
  }
  return found;
}

/** Replaces, in `paths`, the common form of each COMMON_RESPONSES status by a reference; returns the named responses. */
function referenceResponses(paths: unknown): Json {
  const all = responseObjects(paths);
  const named: Json = {};
  for (const [status, name] of Object.entries(COMMON_RESPONSES)) {
    const counts = new Map<string, { count: number; response: unknown }>();
    for (const responses of all) {
      if (responses[status] === undefined) continue;
      const key = canonical(responses[status]);
      const entry = counts.get(key) ?? { count: 0, response: responses[status] };
      entry.count += 1;
      counts.set(key, entry);
    }
    const common = [...counts.entries()].sort((a, b) => b[1].count - a[1].count)[0];
    if (common === undefined || common[1].count < 2) continue;
    named[name] = common[1].response;
    for (const responses of all)
      if (responses[status] !== undefined && canonical(responses[status]) === common[0])
        responses[status] = { $ref: `#/components/responses/${name}` };
  }
  return named;
}

/**
 * A query parameter with a default (`limit`) is optional to the caller, whatever the route's
 * schema says internally (there it is required so that the default is filled in); the document
 * says optional, so generated clients do not demand it. Rewrites `paths` in place.
 */
export function optionalDefaultedParameters(paths: unknown): void {
  if (!isObject(paths)) return;
  for (const item of Object.values(paths)) {
    if (!isObject(item)) continue;
    for (const operation of Object.values(item)) {
      if (!isObject(operation) || !Array.isArray(operation['parameters'])) continue;
      for (const parameter of operation['parameters'] as unknown[]) {
        if (
          isObject(parameter) &&
          parameter['in'] === 'query' &&
          isObject(parameter['schema']) &&
          parameter['schema']['default'] !== undefined
        )
          parameter['required'] = false;
      }
    }
  }
}
