/**
 * REST routes for the audit log: page through entries, and verify the whole chain and its signed
 * checkpoints (the same check as `neuron audit verify`).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { decodeCursor, pageOf } from '../../foundation/storage/cursor.ts';
import { apiKeyAuth, type RouteContext } from '../../foundation/rest/context.ts';
import { Page, Timestamp, pageQuery, NoQuery } from '../../foundation/rest/schemas.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import type { AuditReadService } from './reads.ts';

export const AuditEventSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    occurred_at: Timestamp,
    event_type: Type.String(),
    actor: Type.String({ description: 'system, cli, api-key:<label>, patient:<agent id>, provider:<npi>, …' }),
    details: Type.Object({}, { additionalProperties: true }),
    prev_hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 over the canonical JSON of the entry and prev_hash' }),
  },
  { additionalProperties: false },
);

const VerifyResultSchema = Type.Object(
  {
    ok: Type.Boolean(),
    entries: Type.Integer({ minimum: 0 }),
    checkpoints: Type.Integer({ minimum: 0 }),
    tree_heads: Type.Integer({ minimum: 0, description: 'signed tree heads checked, in the database and outside it' }),
    bad_tree_head: Type.Union([Type.Integer(), Type.Null()], {
      description: 'the size of the first tree head found unsigned, untrusted or inconsistent with the log',
    }),
    first_bad_seq: Type.Union([Type.Integer(), Type.Null()], { description: 'the first entry found missing, altered or out of place' }),
    problem: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

/** The route plugins' options: the configuration and the audit domain's read service, built by the composition root. */
export type AuditRouteOptions = Pick<RouteContext, 'config'> & { reads: AuditReadService };

export function auditRoutes(deps: AuditRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/v1/audit/events',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['audit'],
          operationId: 'listAuditEvents',
          summary: 'List audit entries',
          description: 'Oldest first. Every change made through the API is here with actor `api-key:<label>`.',
          querystring: pageQuery(deps.config.api, {
            event_type: Type.Optional(
              Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9_.]+$', description: 'for example relationship.terminated' }),
            ),
          }),
          response: { 200: Page(AuditEventSchema) },
        },
      },
      async (request) => {
        const query = request.query;
        const after = query.after === undefined ? undefined : (decodeCursor(query.after, ['number'])[0] as number);
        const rows = await deps.reads.list({ after, limit: query.limit + 1, eventType: query.event_type });
        return pageOf(
          rows,
          query.limit,
          (row) => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> }),
          (last) => [last.seq],
        );
      },
    );

    app.post(
      '/v1/audit/verify',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['audit'],
          operationId: 'verifyAuditLog',
          querystring: NoQuery,
          summary: 'Verify the audit chain',
          description:
            'Checks every hash link and every signed checkpoint, like `neuron audit verify`. Takes no body. Reads the whole log: expect it to take a while on long logs.',
          response: { 200: VerifyResultSchema },
        },
      },
      async () => {
        const result = await deps.reads.verify();
        return {
          ok: result.ok,
          entries: result.entries,
          checkpoints: result.checkpoints,
          tree_heads: result.treeHeads,
          bad_tree_head: result.badTreeHead,
          first_bad_seq: result.firstBadSeq,
          problem: result.problem,
        };
      },
    );

    app.register(auditTreeRoutes(deps));
    app.register(auditKeyRotationRoutes(deps));
  };
}

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });

const TreeHeadSchema = Type.Object(
  {
    tree_size: Type.Integer({ minimum: 1, description: 'entries covered: seq 1 to tree_size' }),
    root_hash: { ...Hex64, description: 'RFC 9162 Merkle tree hash over the entries, lowercase hex' },
    timestamp: Timestamp,
    key: Type.Object(
      {
        id: Type.String(),
        public_key: Type.String({ description: 'raw Ed25519 public key, base64url (43 characters)' }),
      },
      { additionalProperties: false },
    ),
    signature: Type.String({
      description:
        'Ed25519 over the canonical JSON of {key_id, root_hash, timestamp, tree_size, type: "neuron.audit_tree_head"} (docs/protocol.md)',
    }),
  },
  { additionalProperties: false },
);

/** Sizes a proof may name: positive, and a safe integer (the OpenAPI maximum keeps Infinity and 1e309 out). */
const TreeSize = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

const ProofHashes = Type.Array(Hex64, { description: 'RFC 9162 hashes in order, lowercase hex' });
const InclusionProofSchema = Type.Object(
  { leaf_index: Type.Integer(), tree_size: Type.Integer(), proof: ProofHashes },
  { additionalProperties: false },
);
const KeyRotationsSchema = Type.Object(
  {
    tree_size: Type.Integer(),
    rotations: Type.Array(
      Type.Object(
        {
          entry: Type.String({ description: 'the organization_key.rotated entry, its canonical JSON (the leaf bytes)' }),
          leaf_index: Type.Integer(),
          inclusion_proof: ProofHashes,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const ConsistencyProofSchema = Type.Object(
  { first: Type.Integer(), second: Type.Integer(), proof: ProofHashes },
  { additionalProperties: false },
);

/** Public: witnesses, patients and auditors check the log without a credential; only hashes leave. */
function auditTreeRoutes(deps: AuditRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/v1/audit/tree-head',
      {
        config: { auth: { kind: 'none' } },
        schema: {
          tags: ['audit'],
          operationId: 'getAuditTreeHead',
          querystring: NoQuery,
          security: [],
          summary: 'The current signed tree head of the audit log',
          description:
            'No credential: witnesses keep it and check later heads against it (`neuron audit monitor`, `neuron audit verify --tree-head`).',
          response: { 200: TreeHeadSchema },
        },
      },
      async () => {
        const head = await deps.reads.latestTreeHead();
        if (head === null) throw new NeuronError('NOT_FOUND', { message: 'the audit log has no signed tree head yet' });
        return head;
      },
    );

    app.get(
      '/v1/audit/proofs/inclusion',
      {
        config: { auth: { kind: 'none' } },
        schema: {
          tags: ['audit'],
          operationId: 'getAuditInclusionProof',
          security: [],
          summary: 'Inclusion proof of one entry in a tree size',
          description:
            'RFC 9162 2.1.3: the audit path of leaf `leaf_index` (the entry with seq = leaf_index + 1) in the tree of `tree_size` entries. Hashes only.',
          querystring: Type.Object(
            { leaf_index: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), tree_size: TreeSize },
            { additionalProperties: false },
          ),
          response: { 200: InclusionProofSchema },
        },
      },
      async (request) => {
        const { leaf_index: leafIndex, tree_size: treeSize } = request.query;
        if (treeSize > (await signedTreeSize(deps))) throw beyondTree(treeSize);
        if (leafIndex >= treeSize) throw new NeuronError('VALIDATION_FAILED', { message: 'leaf_index must be below tree_size' });
        const proof = await deps.reads.inclusionProof(leafIndex, treeSize);
        return { leaf_index: leafIndex, tree_size: treeSize, proof: proof.map((h) => h.toString('hex')) };
      },
    );

    app.get(
      '/v1/audit/proofs/consistency',
      {
        config: { auth: { kind: 'none' } },
        schema: {
          tags: ['audit'],
          operationId: 'getAuditConsistencyProof',
          security: [],
          summary: 'Consistency proof between two tree sizes',
          description: 'RFC 9162 2.1.4: proves the tree of `second` entries extends the tree of `first` entries. Hashes only.',
          querystring: Type.Object({ first: TreeSize, second: TreeSize }, { additionalProperties: false }),
          response: { 200: ConsistencyProofSchema },
        },
      },
      async (request) => {
        const { first, second } = request.query;
        if (second > (await signedTreeSize(deps))) throw beyondTree(second);
        if (first > second) throw new NeuronError('VALIDATION_FAILED', { message: 'first must not exceed second' });
        const proof = await deps.reads.consistencyProof(first, second);
        return { first, second, proof: proof.map((h) => h.toString('hex')) };
      },
    );
  };
}

/** The tree size the log has signed so far; a 404 before its first tree head. */
async function signedTreeSize(deps: AuditRouteOptions): Promise<number> {
  const head = await deps.reads.latestTreeHead();
  if (head === null) throw new NeuronError('NOT_FOUND', { message: 'the audit log has no signed tree head yet' });
  return head.tree_size;
}

function beyondTree(size: number): NeuronError {
  return new NeuronError('VALIDATION_FAILED', { message: `the audit tree has no size ${size} yet` });
}

/** Public, like the proofs: how a witness that pinned an earlier key follows the organization's key rotations. */
function auditKeyRotationRoutes(deps: AuditRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/v1/audit/key-rotations',
      {
        config: { auth: { kind: 'none' } },
        schema: {
          tags: ['audit'],
          operationId: 'getAuditKeyRotations',
          security: [],
          summary: 'The key rotation entries in a tree size, with their inclusion proofs',
          description:
            'Every `organization_key.rotated` entry up to `tree_size`, oldest first, each with its RFC 9162 inclusion proof in that tree: how a witness that pinned an earlier key follows the organization to its current key (docs/security.md "Key rotation"). Public keys and signatures only.',
          querystring: Type.Object({ tree_size: TreeSize }, { additionalProperties: false }),
          response: { 200: KeyRotationsSchema },
        },
      },
      async (request) => {
        const { tree_size: treeSize } = request.query;
        if (treeSize > (await signedTreeSize(deps))) throw beyondTree(treeSize);
        return { tree_size: treeSize, rotations: await deps.reads.keyRotations(treeSize) };
      },
    );
  };
}
