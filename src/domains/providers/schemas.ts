/**
 * Request and response schemas of the provider routes (the OpenAPI document is generated from
 * them). Shapes only; ./validation.ts adds the checks a schema cannot express.
 */
import Type, { type Static, type TSchema } from 'typebox';
import { PROVIDER_TYPES } from '../../foundation/config/index.ts';
import { DISPLAY_TEXT_PATTERN, ReceiptSchema } from 'neuron-careagent-client/protocol';
import { CREDENTIAL_TYPES, PROVIDER_LIMITS, PROVIDER_STATUSES } from './validation.ts';

export const NpiString = Type.String({ pattern: '^[0-9]{10}$', description: 'ten-digit NPI with a valid Luhn check digit' });
const PublicKey = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'raw Ed25519 public key, base64url without padding' });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ProviderTypeSchema = Type.Enum([...PROVIDER_TYPES], { description: 'registry taxonomy provider type' });
export const ProviderStatusSchema = Type.Enum([...PROVIDER_STATUSES]);

export const CredentialSchema = Type.Object(
  {
    type: Type.Enum([...CREDENTIAL_TYPES]),
    issuer: Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.credentialFieldMaxChars }),
    identifier: Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.credentialFieldMaxChars }),
    status: Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.credentialFieldMaxChars }),
    issued_at: Type.Optional(Type.String({ maxLength: 40 })),
    expires_at: Type.Optional(Type.String({ maxLength: 40 })),
  },
  { additionalProperties: false },
);
const Credentials = Type.Array(CredentialSchema, { maxItems: PROVIDER_LIMITS.credentialsMax });
const ProviderTypes = Type.Array(ProviderTypeSchema, { minItems: 1, maxItems: PROVIDER_LIMITS.providerTypesMax });

export const ProviderView = Type.Object(
  {
    npi: NpiString,
    name: Type.String(),
    provider_types: Type.Array(Type.String()),
    specialty: Nullable(Type.String()),
    status: ProviderStatusSchema,
    provider_endpoint: Nullable(Type.String()),
    provider_public_key: Nullable(Type.String()),
    notification_url: Nullable(Type.String()),
    credentials: Type.Array(CredentialSchema),
    registration_id_prefix: Nullable(
      Type.String({
        description:
          'the first characters of the registration id (a capability shown only once, never stored); null when no CareAgent holds one',
      }),
    ),
    agent_status: Nullable(
      Type.Enum(['connected', 'disconnected'], {
        description: 'what the provider CareAgent last said: connected (a heartbeat) or disconnected; null before either',
      }),
    ),
    credential_id: Nullable(Type.String({ description: 'non-secret id of the CareAgent credential; null when none is issued' })),
    last_seen_at: Nullable(Type.String()),
    registry_state: Type.String(),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { additionalProperties: false },
);
export type ProviderViewType = Static<typeof ProviderView>;

export const NpiParams = Type.Object({ npi: NpiString }, { additionalProperties: false });
/**
 * Any 1-64 characters: an id that is not one is a 404 like an unknown one. The routes that take
 * it end in /heartbeat or /disconnect, which no NPI route does, so the router never confuses the two.
 */
export const RegistrationParams = Type.Object(
  { registration_id: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);

export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000, description: 'page size (capped by api.page_size_max)' })),
    after: Type.Optional(Type.String({ maxLength: 512, description: 'cursor from the previous page' })),
  },
  { additionalProperties: false },
);

export const ListProvidersQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000, description: 'page size (capped by api.page_size_max)' })),
    after: Type.Optional(Type.String({ maxLength: 512, description: 'cursor from the previous page' })),
    status: Type.Optional(ProviderStatusSchema),
  },
  { additionalProperties: false },
);

export const ProviderPage = Type.Object(
  { items: Type.Array(ProviderView), next: Nullable(Type.String()) },
  { additionalProperties: false },
);

export const CreateProviderBody = Type.Object(
  {
    npi: NpiString,
    name: Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.nameMaxChars, pattern: DISPLAY_TEXT_PATTERN }),
    provider_types: Type.Optional(ProviderTypes),
    specialty: Type.Optional(Nullable(Type.String({ maxLength: PROVIDER_LIMITS.specialtyMaxChars }))),
    provider_endpoint: Type.Optional(
      Nullable(
        Type.String({
          minLength: 1,
          maxLength: PROVIDER_LIMITS.urlMaxChars,
          description: 'http(s) or ws(s) URL of the provider CareAgent, handed to patients',
        }),
      ),
    ),
    provider_public_key: Type.Optional(Nullable(PublicKey)),
    notification_url: Type.Optional(
      Nullable(
        Type.String({
          minLength: 1,
          maxLength: PROVIDER_LIMITS.urlMaxChars,
          description: 'http(s) URL that receives signed relationship notices',
        }),
      ),
    ),
    credentials: Type.Optional(Credentials),
    status: Type.Optional(
      Type.Enum(['pending', 'active'], { description: 'defaults to pending; approve issues the CareAgent credential' }),
    ),
  },
  { additionalProperties: false },
);

export const UpdateProviderBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.nameMaxChars, pattern: DISPLAY_TEXT_PATTERN })),
    provider_types: Type.Optional(ProviderTypes),
    specialty: Type.Optional(Nullable(Type.String({ maxLength: PROVIDER_LIMITS.specialtyMaxChars }))),
    provider_endpoint: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.urlMaxChars }))),
    provider_public_key: Type.Optional(Nullable(PublicKey)),
    notification_url: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.urlMaxChars }))),
    credentials: Type.Optional(Credentials),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const ApproveBody = Type.Object(
  { rotate: Type.Optional(Type.Boolean({ description: 'replace the credential of a provider that is already active' })) },
  { additionalProperties: false },
);
export const SuspendBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500, description: 'kept in the audit log; no patient data' })) },
  { additionalProperties: false },
);

export const ApprovalResponse = Type.Object(
  {
    provider: ProviderView,
    credential: Type.String({ description: 'the provider CareAgent credential (Authorization: Bearer …); shown only in this answer' }),
    credential_id: Type.String(),
    registration_id: Nullable(
      Type.String({
        description:
          'a registration id minted now for a provider that had none (added by an operator or a seed), shown only in this answer; null when the provider already holds one',
      }),
    ),
    rotated: Type.Boolean(),
    neuron_public_key: Type.String({
      description:
        'the organization key that signs relationship notices and attestations (base64url); give it to the provider CareAgent with the credential',
    }),
  },
  { additionalProperties: false },
);

// ---- provider CareAgent routes (the network's provider client) ----

export const RegisterBody = Type.Object(
  {
    provider_npi: NpiString,
    provider_name: Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.nameMaxChars, pattern: DISPLAY_TEXT_PATTERN }),
    provider_types: ProviderTypes,
    specialty: Type.Optional(Type.String({ maxLength: PROVIDER_LIMITS.specialtyMaxChars })),
    credentials: Type.Optional(Credentials),
    provider_endpoint: Type.Optional(Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.urlMaxChars })),
    provider_public_key: Type.Optional(PublicKey),
    notification_url: Type.Optional(Type.String({ minLength: 1, maxLength: PROVIDER_LIMITS.urlMaxChars })),
  },
  { additionalProperties: false },
);

export const RegisterResponse = Type.Object(
  {
    registration_id: Type.String({ description: 'the capability for heartbeat and disconnect; shown only in this answer' }),
    provider_id: Type.String({ description: 'the provider NPI' }),
    status: Type.Literal('pending'),
  },
  { additionalProperties: false },
);

export const HeartbeatResponse = Type.Object(
  {
    status: Type.Enum(['connected', 'disconnected'], { description: "the CareAgent's liveness as the Neuron now records it" }),
    last_seen: Type.String(),
    roster_status: Type.Enum([...PROVIDER_STATUSES], {
      description: "the provider's place on the roster: pending until the operator approves it",
    }),
  },
  { additionalProperties: false },
);

// ---- pull feed ----

/** A relationship notice: exactly the JSON body the worker posts to the notification URL. */
export const RelationshipNotice = Type.Object(
  {
    event_id: Type.String(),
    relationship_id: Type.String(),
    patient_agent_id: Type.String(),
    patient_public_key: Type.String(),
    patient_endpoint: Type.String(),
    consented_actions: Type.Array(Type.String()),
    established_at: Type.String(),
    attestation: Type.Object(
      {
        payload: Type.String(),
        signature: Type.String(),
        receipt: Type.Optional(
          Type.Object(ReceiptSchema.properties, {
            description:
              'the audit receipt the patient got too: the signed tree head covering the handshake.completed entry, the entry and its inclusion proof (docs/protocol.md "Audit receipts")',
            additionalProperties: false,
          }),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: true },
);

export const FeedResponse = Type.Object(
  {
    items: Type.Array(RelationshipNotice),
    next: Nullable(Type.String({ description: 'cursor to resume after the last notice returned; null when there has never been one' })),
    has_more: Type.Boolean({ description: 'more notices follow right away' }),
  },
  { additionalProperties: false },
);
