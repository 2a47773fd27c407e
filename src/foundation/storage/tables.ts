/**
 * Row types of every table, shared by both dialects. Columns use portable types so one store
 * implementation serves SQLite and PostgreSQL alike:
 * - times are ISO-8601 UTC strings with milliseconds (`2026-01-01T00:00:00.000Z`), which sort
 *   correctly as text;
 * - booleans are 0/1 integers;
 * - lists and objects are JSON text, parsed by the owning store.
 * Never clinical data: the directory holds front-desk demographics only.
 */
import type { ColumnType } from 'kysely';

/** An auto-incremented integer key: optional on insert, a number when read. */
type Serial = ColumnType<number, number | undefined, never>;

export interface OrganizationKeysTable {
  id: string;
  /** Raw Ed25519 public key, base64url (43 chars). */
  public_key: string;
  /** PKCS#8 DER of the private key, base64. Kept in the database so every instance signs alike. */
  private_key_pkcs8: string;
  created_at: string;
  active: number;
}

export interface ProvidersTable {
  npi: string;
  name: string;
  /** JSON array of registry taxonomy types. */
  provider_types: string;
  specialty: string | null;
  /** JSON array of credentials as sent to the registry. */
  credentials: string;
  status: 'pending' | 'active' | 'suspended';
  provider_endpoint: string | null;
  provider_public_key: string | null;
  notification_url: string | null;
  /** Before migration 005 the registration id itself; now always null (see registration_digest). */
  registration_id: string | null;
  /** SHA-256 (hex) of the registration capability (src/domains/providers/registration.ts); never the id. */
  registration_digest: string | null;
  /** Its first characters, for people to tell registrations apart. */
  registration_prefix: string | null;
  /** What the provider CareAgent last said: connected (heartbeat), disconnected; null before either. */
  agent_status: 'connected' | 'disconnected' | null;
  /** Digest of the provider CareAgent's credential; the credential itself is shown once. */
  credential_id: string | null;
  credential_digest: string | null;
  last_seen_at: string | null;
  registry_state: string;
  registry_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface RelationshipsTable {
  id: string;
  patient_agent_id: string;
  patient_public_key: string;
  patient_endpoint: string;
  provider_npi: string;
  /** JSON array, exactly as consented in the token. */
  consented_actions: string;
  consent_token_payload: string;
  consent_token_signature: string;
  token_dialect: string;
  consent_expires_at: string;
  connection_id: string | null;
  status: 'active' | 'suspended' | 'terminated';
  status_reason: string | null;
  established_at: string;
  last_handshake_at: string;
  updated_at: string;
}

export interface PatientsTable {
  patient_agent_id: string;
  patient_public_key: string;
  patient_endpoint: string;
  /** JSON object of front-desk demographics, or null when none was given or it was deleted. */
  profile: string | null;
  first_seen_at: string;
  last_seen_at: string;
  updated_at: string;
}

/** A public key a blocked agent presented: the block holds against it too (migration 005). */
export interface BlockedKeysTable {
  patient_public_key: string;
  patient_agent_id: string;
  created_at: string;
}

export interface BlocksTable {
  patient_agent_id: string;
  reason: string | null;
  blocked_by: string;
  created_at: string;
}

export interface ApiKeysTable {
  /** Non-secret key id, part of the presented key, used for lookup. */
  id: string;
  label: string;
  /** JSON array of scopes. */
  scopes: string;
  /** SHA-256 of the secret part, hex. */
  digest: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface OutboxTable {
  seq: Serial;
  /** Stable id sent to receivers so they can drop duplicates (delivery is at least once). */
  event_id: string;
  kind: 'provider.relationship' | 'webhook';
  event_type: string;
  /** Provider NPI for provider notices; subscription id for webhooks. */
  target: string;
  /** The exact JSON body that is signed and posted. */
  body: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  next_attempt_at: string;
  locked_by: string | null;
  locked_until: string | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

export interface WebhookSubscriptionsTable {
  id: string;
  url: string;
  /** JSON array of event types. */
  events: string;
  /** Signing secret for this subscription (shown once at creation). */
  secret: string;
  label: string;
  created_by: string;
  created_at: string;
  active: number;
}

export interface AuditLogTable {
  seq: number;
  occurred_at: string;
  event_type: string;
  actor: string;
  /** Canonical JSON of the details object. */
  details: string;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointsTable {
  seq: number;
  head_hash: string;
  signed_at: string;
  public_key: string;
  signature: string;
}

/** An aligned complete subtree of the audit Merkle tree (migration 004): leaves [idx * 2^level, (idx + 1) * 2^level). */
export interface AuditTreeNodesTable {
  level: number;
  idx: number;
  /** Lowercase hex SHA-256. */
  hash: string;
}

/** A signed tree head of the audit Merkle tree (migration 004, docs/storage.md). */
export interface AuditTreeHeadsTable {
  tree_size: number;
  root_hash: string;
  timestamp: string;
  key_id: string;
  public_key: string;
  signature: string;
}

/** Name/value state owned by one domain (for example the registry registration). */
export interface SettingsTable {
  name: string;
  value: string;
  updated_at: string;
}

/** Time-bounded locks held by one instance (leader for heartbeats, and the like). */
export interface LeasesTable {
  name: string;
  holder: string;
  expires_at: string;
}

/** A person who signs in to the console (src/domains/operators/). */
export interface OperatorsTable {
  name: string;
  role: 'front-desk' | 'admin';
  /** `scrypt$N$r$p$salt$hash` (base64url), parameters kept with each hash. */
  password_hash: string;
  /** Consecutive failed sign-ins since the last success or lockout. */
  failed_signins: number;
  locked_until: string | null;
  created_at: string;
  updated_at: string;
}

/** A signed-in console session; only the SHA-256 of its token is stored. */
export interface OperatorSessionsTable {
  token_digest: string;
  operator_name: string;
  created_at: string;
  last_seen_at: string;
  /** The absolute end (console.session_absolute_ms after sign-in). */
  expires_at: string;
}

export interface Database {
  organization_keys: OrganizationKeysTable;
  providers: ProvidersTable;
  relationships: RelationshipsTable;
  patients: PatientsTable;
  blocks: BlocksTable;
  blocked_keys: BlockedKeysTable;
  api_keys: ApiKeysTable;
  outbox: OutboxTable;
  webhook_subscriptions: WebhookSubscriptionsTable;
  audit_log: AuditLogTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_tree_nodes: AuditTreeNodesTable;
  audit_tree_heads: AuditTreeHeadsTable;
  settings: SettingsTable;
  leases: LeasesTable;
  operators: OperatorsTable;
  operator_sessions: OperatorSessionsTable;
}
