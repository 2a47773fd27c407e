/**
 * The OpenAPI document as something to build on, and the reference page: every operation named,
 * tagged and described (routes added later are held to it too), shared schemas referenced from
 * `components`, the document small, served from bytes serialized once with an ETag, and /docs
 * usable over plain HTTP on a LAN host name.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { startApiNeuron, type ApiTestNeuron } from '../../test/helpers/api.ts';
import { pagePolicy } from './documentation.ts';
import { matchesEtag } from '../http/serialized-document.ts';

/** Small enough to load in a browser tab and a code generator without thought. */
const DOCUMENT_MAX_BYTES = 150 * 1024;
const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
const LAN_HOST = 'neuron.clinic.lan';

/** A plain HTTP GET with a chosen Host header (fetch does not let a caller set Host). */
function getWithHost(
  url: string,
  host: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: { host } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    request.on('error', reject);
    request.end();
  });
}

describe('OpenAPI document', () => {
  let t: ApiTestNeuron;
  let text: string;
  let document: Record<string, any>;
  before(async () => {
    t = await startApiNeuron({ config: { organization: { name: 'Riverside <Family> Clinic', npi: '1245319599' } } });
    const response = await fetch(`${t.url}/openapi.json`);
    assert.equal(response.status, 200);
    text = await response.text();
    document = JSON.parse(text) as Record<string, any>;
  });
  after(async () => {
    await t.stop();
  });

  it('names, tags and describes every operation and webhook, with only declared tags', () => {
    const declared = new Set(
      (document['tags'] as Array<{ name: string; description?: string }>).map((tag) => {
        assert.ok(tag.description, `tag ${tag.name} has a description`);
        return tag.name;
      }),
    );
    const operationIds = new Set<string>();
    const faults: string[] = [];
    const sections: Array<[string, Record<string, Record<string, any>>]> = [
      ['paths', document['paths']],
      ['webhooks', document['webhooks']],
    ];
    for (const [section, items] of sections) {
      for (const [route, item] of Object.entries(items)) {
        for (const [method, operation] of Object.entries(item)) {
          if (!METHODS.has(method)) continue;
          const where = `${section} ${method.toUpperCase()} ${route}`;
          if (typeof operation.operationId !== 'string' || operation.operationId === '') faults.push(`${where}: no operationId`);
          else if (operationIds.has(operation.operationId)) faults.push(`${where}: operationId ${operation.operationId} is used twice`);
          else operationIds.add(operation.operationId);
          if (typeof operation.description !== 'string' || operation.description.trim() === '') faults.push(`${where}: no description`);
          const tags = operation.tags as string[] | undefined;
          if (!tags || tags.length === 0) faults.push(`${where}: no tag`);
          for (const tag of tags ?? []) if (!declared.has(tag)) faults.push(`${where}: tag "${tag}" is not declared in the top-level tags`);
          if (!Array.isArray(operation.security)) faults.push(`${where}: no security (use [] for a public route)`);
        }
      }
    }
    assert.deepEqual(faults, []);
    assert.ok(operationIds.size > 40, `${operationIds.size} operations`);
  });

  it('says who runs it, under which licence, and where it is served', async () => {
    assert.ok(Buffer.byteLength(text) < DOCUMENT_MAX_BYTES, `the document is ${Buffer.byteLength(text)} bytes`);
    assert.equal(document['info'].license.identifier, 'Apache-2.0');
    assert.equal(document['info'].contact.name, 'Riverside <Family> Clinic');
    assert.deepEqual(
      document['servers'].map((server: { url: string }) => server.url),
      [t.url],
    );
    // Documented with no query parameters, the health routes refuse one like every such route.
    const probe = await fetch(`${t.url}/health/live?verbose=1`);
    assert.equal(probe.status, 400);
    assert.equal(((await probe.json()) as { code: string }).code, 'VALIDATION_FAILED');
    for (const [route, method] of [
      ['/health/live', 'get'],
      ['/health/ready', 'get'],
      ['/v1/providers/register', 'post'],
    ] as const) {
      assert.deepEqual(document['paths'][route][method].security, [], `${method} ${route} is public`);
    }
  });

  it('defines the shared schemas once in components and refers to them', () => {
    const schemas = document['components'].schemas as Record<string, unknown>;
    for (const name of [
      'Problem',
      'Provider',
      'ProviderCredential',
      'Relationship',
      'Patient',
      'Block',
      'AuditEvent',
      'Webhook',
      'ApiKey',
      'Organization',
      'Status',
      'RelationshipPage',
      'ProviderPage',
      'AuditEventPage',
    ]) {
      assert.ok(schemas[name], `components.schemas.${name}`);
    }
    const list = document['paths']['/v1/relationships'].get.responses['200'].content['application/json'].schema;
    assert.deepEqual(list, { $ref: '#/components/schemas/RelationshipPage' });
    assert.deepEqual(schemas['RelationshipPage'], {
      ...(schemas['RelationshipPage'] as object),
      properties: {
        ...(schemas['RelationshipPage'] as any).properties,
        items: { type: 'array', items: { $ref: '#/components/schemas/Relationship' } },
      },
    });
    const limit = (document['paths']['/v1/relationships'].get.parameters as Array<{ name: string; required: boolean }>).find(
      (p) => p.name === 'limit',
    );
    assert.equal(limit?.required, false, 'a parameter with a default is optional to the caller');
    assert.deepEqual(document['paths']['/v1/providers/{npi}'].get.responses['200'].content['application/json'].schema, {
      $ref: '#/components/schemas/Provider',
    });
    assert.equal(
      document['components'].responses.Unauthenticated.content['application/problem+json'].schema.$ref,
      '#/components/schemas/Problem',
    );
    // Every reference resolves.
    for (const match of text.matchAll(/"\$ref":"#\/components\/(schemas|responses)\/([^"]+)"/g)) {
      assert.ok(document['components'][match[1]!][match[2]!], `${match[0]} resolves`);
    }
  });

  it('serves the same bytes each time with a strong ETag, and 304 to a client that has them', async () => {
    const first = await fetch(`${t.url}/openapi.json`);
    const second = await fetch(`${t.url}/openapi.json`);
    const etag = first.headers.get('etag');
    assert.match(etag ?? '', /^"[A-Za-z0-9_-]{43}"$/);
    assert.equal(second.headers.get('etag'), etag);
    assert.equal(await first.text(), text);
    assert.equal(await second.text(), text);
    assert.match(first.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(first.headers.get('cache-control'), 'public, no-cache');

    for (const ifNoneMatch of [etag!, `W/${etag}`, `"something-else", ${etag}`, '*']) {
      const cached = await fetch(`${t.url}/openapi.json`, { headers: { 'if-none-match': ifNoneMatch } });
      assert.equal(cached.status, 304, ifNoneMatch);
      assert.equal(await cached.text(), '');
      assert.equal(cached.headers.get('etag'), etag);
    }
    const stale = await fetch(`${t.url}/openapi.json`, { headers: { 'if-none-match': '"an-older-document"' } });
    assert.equal(stale.status, 200);
    assert.equal(await stale.text(), text);
  });

  it('matches If-None-Match as RFC 9110 says', () => {
    assert.equal(matchesEtag(undefined, '"a"'), false);
    assert.equal(matchesEtag('"b"', '"a"'), false);
    assert.equal(matchesEtag('"a"', '"a"'), true);
    assert.equal(matchesEtag(' "b" , W/"a"', '"a"'), true);
    assert.equal(matchesEtag('*', '"a"'), true);
  });

  it('serves /docs over plain HTTP on a LAN host name: no upgrade to https, same-origin assets, the organization in the title', async () => {
    const page = await getWithHost(`${t.url}/docs/`, LAN_HOST);
    assert.equal(page.status, 200);
    const policy = String(page.headers['content-security-policy']);
    assert.doesNotMatch(policy, /upgrade-insecure-requests/);
    assert.doesNotMatch(policy, /https:|validator\.swagger\.io/);
    assert.match(policy, /default-src 'self'/);
    assert.match(policy, /script-src 'self'/);
    assert.match(page.body, /<title>Riverside &#60;Family&#62; Clinic: Neuron API reference<\/title>/);

    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    assert.ok(assets.length >= 4, assets.join(', '));
    for (const asset of assets) {
      assert.doesNotMatch(asset, /^[a-z]+:|^\/\//i, `${asset} is loaded from this origin`);
      const response = await getWithHost(new URL(asset, `${t.url}/docs/`).href, LAN_HOST);
      assert.equal(response.status, 200, asset);
    }
    // The page's settings load the document from this origin and ask for no validator badge.
    const initializer = await getWithHost(`${t.url}/docs/static/swagger-initializer.js`, LAN_HOST);
    assert.match(initializer.body, /url: resolveUrl\('\.\/json'\)/);
    assert.match(initializer.body, /"validatorUrl":null/);
  });

  it('keeps upgrade-insecure-requests only when the Neuron serves TLS itself', () => {
    const swaggerUiPolicy =
      "default-src 'self'; img-src 'self' data: validator.swagger.io; style-src 'self' https: 'sha256-x'; upgrade-insecure-requests;";
    assert.equal(pagePolicy(swaggerUiPolicy, false), "default-src 'self'; img-src 'self' data:; style-src 'self' 'sha256-x'");
    assert.equal(
      pagePolicy(swaggerUiPolicy, true),
      "default-src 'self'; img-src 'self' data:; style-src 'self' 'sha256-x'; upgrade-insecure-requests",
    );
  });
});
