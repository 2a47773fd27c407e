/**
 * The one configuration schema. Every option, its default and its bounds live here; the reasons
 * for each default are in docs/configuration.md (a test checks that every option is documented).
 *
 * Keys are snake_case so that the file, the `NEURON_*` environment variables (`__` for nesting,
 * for example NEURON_HANDSHAKE__MAX_CONCURRENT_HANDSHAKES) and the wire specs use the same names.
 */
import Type, { type Static } from 'typebox';
import { DISPLAY_TEXT_PATTERN } from 'neuron-careagent-client/protocol';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;

/** Marks an option whose value must never be printed or logged. */
const secret = { 'x-secret': true } as const;

/**
 * storage.connect_timeout_ms: long enough for a TCP connect, a TLS handshake and SCRAM
 * authentication across a hospital network; short enough that a dead or unreachable PostgreSQL
 * fails a request (and readiness) within seconds instead of hanging on the operating system's TCP
 * timeout (about two minutes). pg's own default (0) waits forever. Also the storage layer's
 * default when it is opened without a configuration (src/foundation/storage/database.ts).
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10 * SECOND;
/**
 * storage.sqlite_commit_batch_max: completing handshakes that arrive together share one SQLite
 * commit (one fsync) in groups of at most this many. Each costs a few hundred microseconds inside
 * the transaction, so 64 hold the single writer lock for about 20 ms at most; beyond a few dozen
 * the shared fsync is already a small part of each one's cost. Also the storage layer's default.
 */
export const DEFAULT_SQLITE_COMMIT_BATCH_MAX = 64;
/**
 * storage.sqlite_commit_delay_ms: when at least storage.sqlite_commit_siblings more completing
 * handshakes are expected within it (sessions awaiting their token or challenge response, or the
 * rate handshakes have been completing at lately), a completing one waits up to this long for them
 * to share its commit. Every commit group pays an fsync, the audit tree head and its Ed25519
 * signature and the tree-head file's fdatasync once; left to the event loop's turns, groups stayed
 * near one handshake each even under load, and these cost about a millisecond of server CPU per
 * handshake (docs/benchmarks.md, "Commit delay"). In the pinned bench 20 ms spent about 15 % less
 * CPU per handshake than 10 ms, and 50 ms another 7 % less; 20 ms is far below what a patient's
 * agent notices next to its network round trips. Also the storage layer's default.
 */
export const DEFAULT_SQLITE_COMMIT_DELAY_MS = 20;
/**
 * storage.sqlite_commit_siblings: how many more completing handshakes must be expected within
 * storage.sqlite_commit_delay_ms for a completing one to wait for them. Two: waiting for a single
 * one halves the per-group cost at best; with fewer expected, a quiet Neuron answers at once.
 * Also the storage layer's default.
 */
export const DEFAULT_SQLITE_COMMIT_SIBLINGS = 2;
/**
 * storage.write_probe_interval_ms: while writes fail on the storage (a full disk), readiness tries
 * one small real commit at most this often to notice that space was freed. The probe is reached
 * from the unauthenticated readiness route, so it is bounded; 5 s is within one or two probe
 * periods of a typical load balancer. Also the storage layer's default.
 */
export const DEFAULT_WRITE_PROBE_INTERVAL_MS = 5 * SECOND;
/**
 * handshake.failure_audit_batch_max: failed handshakes reported in the same turn of the event loop
 * have their audit entries written in transactions of at most this many. Enough to turn a burst
 * (thousands of idle clients timing out together) into a few commits; few enough that a patient's
 * completing transaction never waits long behind one (each entry is a read of the chain head and
 * an insert, tens of microseconds: 256 hold the writer for about 10 ms). Also the handshake
 * service's default.
 */
export const DEFAULT_FAILURE_AUDIT_BATCH_MAX = 256;

/**
 * registry.heartbeat_interval_ms: the registry spec's recommended heartbeat period, five chances
 * per 5-minute staleness window. Also the registry service's default.
 */
export const DEFAULT_REGISTRY_HEARTBEAT_INTERVAL_MS = MINUTE;
/** registry.request_timeout_ms: a registry answer takes milliseconds; 10 s covers a slow network. */
export const DEFAULT_REGISTRY_REQUEST_TIMEOUT_MS = 10 * SECOND;
/**
 * registry.backoff_initial_ms / backoff_max_ms: the first retry comes within a second, and a long
 * outage is probed about once a minute.
 */
export const DEFAULT_REGISTRY_BACKOFF_INITIAL_MS = SECOND;
export const DEFAULT_REGISTRY_BACKOFF_MAX_MS = MINUTE;

export const PROVIDER_TYPES = [
  'physician',
  'nursing',
  'pharmacy',
  'dental',
  'behavioral_mental_health',
  'laboratory',
  'radiology_imaging',
  'therapy_rehabilitation',
  'emergency_medical',
  'other',
] as const;

const Npi = Type.String({ pattern: '^\\d{10}$', description: 'ten-digit NPI with a valid Luhn check digit' });

export const ProviderSeedSchema = Type.Object(
  {
    npi: Npi,
    name: Type.String({ minLength: 1, maxLength: 200, pattern: DISPLAY_TEXT_PATTERN }),
    provider_types: Type.Array(Type.Union(PROVIDER_TYPES.map((t) => Type.Literal(t))), {
      minItems: 1,
      maxItems: 10,
      default: ['physician'],
    }),
    specialty: Type.Optional(Type.String({ maxLength: 200 })),
    provider_endpoint: Type.String({ minLength: 1, maxLength: 2048 }),
    provider_public_key: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' })),
    notification_url: Type.Optional(Type.String({ maxLength: 2048 })),
    status: Type.Union([Type.Literal('pending'), Type.Literal('active'), Type.Literal('suspended')], { default: 'active' }),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    organization: Type.Object(
      {
        // Shown to patients and in the registry: no control or bidirectional characters (protocol/limits.ts).
        name: Type.String({ minLength: 1, maxLength: 200, default: 'Development Practice', pattern: DISPLAY_TEXT_PATTERN }),
        // The development default is one of the synthetic NPIs published for tests: it passes the
        // Luhn check and belongs to nobody.
        npi: Type.String({ ...Npi, default: '1245319599' }),
        type: Type.String({ minLength: 1, maxLength: 64, default: 'practice' }),
      },
      { additionalProperties: false, default: {} },
    ),

    /** Where the SQLite file, the PID file and other state live; relative to the config file. */
    data_dir: Type.String({ minLength: 1, default: './data' }),

    server: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65_535, default: 8600 }),
        public_url: Type.String({
          maxLength: 2048,
          default: '',
          description: 'base URL patients reach (https://host:port); empty derives it from host and port',
        }),
        tls: Type.Object(
          {
            cert_file: Type.String({ default: '' }),
            key_file: Type.String({ default: '' }),
          },
          { additionalProperties: false, default: {} },
        ),
        body_limit_bytes: Type.Integer({ minimum: 1_024, maximum: 10 * 1024 * 1024, default: 256 * 1024 }),
        request_timeout_ms: Type.Integer({ minimum: 1_000, maximum: 10 * MINUTE, default: 30 * SECOND }),
        keep_alive_timeout_ms: Type.Integer({ minimum: 1_000, maximum: 10 * MINUTE, default: 72 * SECOND }),
        // A caller's X-Request-Id longer than this is replaced by our own: 128 fits any UUID, ULID or trace id, and bounds each log line.
        request_id_max_chars: Type.Integer({ minimum: 16, maximum: 1_024, default: 128 }),
        shutdown_timeout_ms: Type.Integer({ minimum: 100, maximum: 5 * MINUTE, default: 10 * SECOND }),
        // Reverse proxies and load balancers whose X-Forwarded-For is believed (src/foundation/rest/client-address.ts).
        // Empty by default: trust nobody, so a client cannot choose the address its limits count against.
        // At most 1 000 entries: a deployment lists its proxies or their subnets, not clients.
        trusted_proxies: Type.Array(
          Type.String({
            minLength: 1,
            maxLength: 64,
            pattern: '^(?:loopback|linklocal|uniquelocal|[0-9A-Fa-f:.]+(?:/[0-9.]+)?)$',
            description: 'an IP address, a CIDR range, or loopback, linklocal, uniquelocal',
          }),
          { default: [], maxItems: 1_000 },
        ),
      },
      { additionalProperties: false, default: {} },
    ),

    handshake: Type.Object(
      {
        max_concurrent_handshakes: Type.Integer({ minimum: 1, maximum: 100_000, default: 10 }),
        max_queued: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 10_000 }),
        queue_timeout_ms: Type.Integer({ minimum: 10, maximum: 10 * MINUTE, default: 30 * SECOND }),
        auth_timeout_ms: Type.Integer({ minimum: 10, maximum: 5 * MINUTE, default: 10 * SECOND }),
        challenge_timeout_ms: Type.Integer({ minimum: 10, maximum: 5 * MINUTE, default: 30 * SECOND }),
        max_message_bytes: Type.Integer({ minimum: 1_024, maximum: 1024 * 1024, default: 64 * 1024 }),
        clock_skew_seconds: Type.Integer({ minimum: 0, maximum: 600, default: 60 }),
        retry_after_seconds: Type.Integer({ minimum: 1, maximum: 3_600, default: 5 }),
        close_grace_ms: Type.Integer({ minimum: 10, maximum: MINUTE, default: 2 * SECOND }),
        // Upgrades queued plus in progress from one client address (an IPv6 /64). 100 keeps one
        // client from filling the 10 000-place queue (that takes 100 addresses) while a clinic or a
        // carrier NAT would need 100 patients' handshakes pending at the same instant (each takes
        // tens of milliseconds when not queued) before any of them were told to retry.
        max_pending_per_address: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100 }),
        failure_audit_batch_max: Type.Integer({ minimum: 1, maximum: 10_000, default: DEFAULT_FAILURE_AUDIT_BATCH_MAX }),
      },
      { additionalProperties: false, default: {} },
    ),

    storage: Type.Object(
      {
        url: Type.String({ default: '', description: 'empty for the embedded SQLite file; postgres://… for PostgreSQL', ...secret }),
        sqlite_file: Type.String({ minLength: 1, default: 'neuron.sqlite' }),
        sqlite_synchronous: Type.Union([Type.Literal('FULL'), Type.Literal('NORMAL'), Type.Literal('EXTRA')], { default: 'FULL' }),
        busy_timeout_ms: Type.Integer({ minimum: 0, maximum: MINUTE, default: 5 * SECOND }),
        connect_timeout_ms: Type.Integer({ minimum: 100, maximum: 5 * MINUTE, default: DEFAULT_CONNECT_TIMEOUT_MS }),
        pool_max: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
        sqlite_commit_batch_max: Type.Integer({ minimum: 1, maximum: 1_000, default: DEFAULT_SQLITE_COMMIT_BATCH_MAX }),
        // At most one second: a longer wait would hold patients' answers for nothing.
        sqlite_commit_delay_ms: Type.Integer({ minimum: 0, maximum: SECOND, default: DEFAULT_SQLITE_COMMIT_DELAY_MS }),
        sqlite_commit_siblings: Type.Integer({ minimum: 1, maximum: 10_000, default: DEFAULT_SQLITE_COMMIT_SIBLINGS }),
        // On by default: a corrupt page found at start beats one found by a patient's handshake.
        // Reads every page once (about 1 s per few hundred MB); see docs/configuration.md.
        sqlite_quick_check: Type.Boolean({ default: true }),
        write_probe_interval_ms: Type.Integer({ minimum: 0, maximum: 5 * MINUTE, default: DEFAULT_WRITE_PROBE_INTERVAL_MS }),
      },
      { additionalProperties: false, default: {} },
    ),

    registry: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        url: Type.String({ maxLength: 2048, default: '' }),
        heartbeat_interval_ms: Type.Integer({ minimum: 10, maximum: 4 * MINUTE, default: DEFAULT_REGISTRY_HEARTBEAT_INTERVAL_MS }),
        request_timeout_ms: Type.Integer({ minimum: 10, maximum: MINUTE, default: DEFAULT_REGISTRY_REQUEST_TIMEOUT_MS }),
        backoff_initial_ms: Type.Integer({ minimum: 1, maximum: MINUTE, default: DEFAULT_REGISTRY_BACKOFF_INITIAL_MS }),
        backoff_max_ms: Type.Integer({ minimum: 1, maximum: 10 * MINUTE, default: DEFAULT_REGISTRY_BACKOFF_MAX_MS }),
      },
      { additionalProperties: false, default: {} },
    ),

    // What the organization offers the network: published as an agent card at
    // /.well-known/agent-card.json and to the registry's agent-card routes (docs/registry.md).
    // No capability listed (the default): no card is published.
    services: Type.Object(
      {
        description: Type.String({ maxLength: 1_000, default: '' }),
        // Capability names are matched exactly (case-insensitively) by patients' searches, so they
        // are short snake_case words; 50 is far more than a practice offers and bounds the card.
        capabilities: Type.Array(
          Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_]*$' }),
              description: Type.String({ maxLength: 500, default: '' }),
            },
            { additionalProperties: false },
          ),
          { default: [], maxItems: 50 },
        ),
        specialty: Type.String({ maxLength: 200, default: '' }),
        location: Type.Object(
          {
            address: Type.String({ maxLength: 200, default: '' }),
            city: Type.String({ maxLength: 100, default: '' }),
            state: Type.String({ maxLength: 50, default: '' }),
            zip: Type.String({ maxLength: 20, default: '' }),
            country: Type.String({ minLength: 2, maxLength: 2, default: 'US' }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),

    discovery: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        instance_name: Type.String({ maxLength: 63, default: '' }),
        interfaces: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),

    api: Type.Object(
      {
        rate_limit_per_minute: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100 }),
        auth_failure_limit_per_minute: Type.Integer({ minimum: 1, maximum: 10_000, default: 10 }),
        // Unauthenticated POST /v1/providers/register per client address and minute. A provider
        // CareAgent registers once; 10 (as a burst, then one every 6 s) lets an office enrol its
        // providers in one go while each call's roster row and audit entry stay bounded.
        register_limit_per_minute: Type.Integer({ minimum: 1, maximum: 10_000, default: 10 }),
        cors_origins: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        docs_enabled: Type.Boolean({ default: true }),
        metrics_port: Type.Integer({
          minimum: 0,
          maximum: 65_535,
          default: 0,
          description: '0 disables the separate loopback metrics listener',
        }),
        key_last_used_flush_ms: Type.Integer({ minimum: 100, maximum: 10 * MINUTE, default: MINUTE }),
        page_size_default: Type.Integer({ minimum: 1, maximum: 1_000, default: 50 }),
        page_size_max: Type.Integer({ minimum: 1, maximum: 1_000, default: 200 }),
      },
      { additionalProperties: false, default: {} },
    ),

    outbox: Type.Object(
      {
        poll_interval_ms: Type.Integer({ minimum: 10, maximum: MINUTE, default: SECOND }),
        batch_size: Type.Integer({ minimum: 1, maximum: 1_000, default: 20 }),
        max_attempts: Type.Integer({ minimum: 1, maximum: 100, default: 12 }),
        backoff_initial_ms: Type.Integer({ minimum: 1, maximum: MINUTE, default: 2 * SECOND }),
        backoff_max_ms: Type.Integer({ minimum: 1, maximum: 24 * 60 * MINUTE, default: 30 * MINUTE }),
        request_timeout_ms: Type.Integer({ minimum: 10, maximum: MINUTE, default: 10 * SECOND }),
        lease_ms: Type.Integer({ minimum: 100, maximum: 10 * MINUTE, default: MINUTE }),
      },
      { additionalProperties: false, default: {} },
    ),

    /**
     * Where provider notices and webhooks may be sent (src/foundation/outbound/policy.ts). Unspecified,
     * link-local (cloud metadata), multicast, reserved and broadcast addresses are refused
     * whatever these say.
     */
    outbound: Type.Object(
      {
        // Loopback is the Neuron's own host (its listeners, its database, local agents): a URL
        // pointing there is an attack far more often than a receiver. Development turns it on.
        allow_loopback: Type.Boolean({ default: false }),
        // Provider CareAgents commonly run on the organization's own network (a practice's mini
        // PC, a hospital's internal hosts), so private ranges are allowed unless refused here.
        allow_private: Type.Boolean({ default: true }),
        // Notices carry patient keys and endpoints: unencrypted only to loopback and private
        // addresses, where https certificates are often impractical.
        plain_http: Type.Union([Type.Literal('never'), Type.Literal('private'), Type.Literal('always')], { default: 'private' }),
        // Exceptions (host names, addresses, CIDR ranges); a few dozen is plenty, 1 000 bounds the list.
        allow: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { default: [], maxItems: 1_000 }),
      },
      { additionalProperties: false, default: {} },
    ),

    audit: Type.Object(
      {
        checkpoint_interval_ms: Type.Integer({ minimum: 100, maximum: 24 * 60 * MINUTE, default: 5 * MINUTE }),
        // How long a tree head may sit in the SQLite database without being in the data
        // directory's tree-head file before verify calls the file rolled back. The file lags by
        // one fdatasync (milliseconds); a minute leaves room for a slow disk, and a head older
        // than that missing from the file was removed from it.
        tree_head_file_grace_ms: Type.Integer({ minimum: 1_000, maximum: 24 * 60 * MINUTE, default: MINUTE }),
        // Each tree head is written to that file right after its commit (a killed process loses
        // none); its fdatasync, which only a power loss or an OS crash makes matter, runs at most
        // this often. One per commit group cost a handshake about 0.04 ms of CPU in the pinned
        // bench; one a second costs nothing measurable and bounds the file's lag after a power
        // loss to a second, far inside tree_head_file_grace_ms.
        tree_head_file_sync_interval_ms: Type.Integer({ minimum: 0, maximum: MINUTE, default: SECOND }),
        // How often an instance re-reads the active organization key, for the case another instance
        // rotated it while this one sealed nothing (sealing reloads at once). One indexed row read;
        // half a minute bounds how long a notice or the served key may still name the old key.
        key_reload_interval_ms: Type.Integer({ minimum: 1_000, maximum: 60 * MINUTE, default: 30 * SECOND }),
      },
      { additionalProperties: false, default: {} },
    ),

    /**
     * The operators' console (src/domains/operators/, docs/console.md): sign-in, sessions, lockout and the
     * password hashing cost. Reasons for each default are in docs/configuration.md.
     */
    console: Type.Object(
      {
        // A front-desk screen left signed in ends after half an hour without use.
        session_idle_ms: Type.Integer({ minimum: 100, maximum: 24 * 60 * MINUTE, default: 30 * MINUTE }),
        // However busy, a session ends after one working day (a shift) and the operator signs in again.
        session_absolute_ms: Type.Integer({ minimum: 100, maximum: 7 * 24 * 60 * MINUTE, default: 12 * 60 * MINUTE }),
        // A session's last use is written at most this often, not on every request.
        session_touch_interval_ms: Type.Integer({ minimum: 0, maximum: 10 * MINUTE, default: MINUTE }),
        // Sign-in attempts per client address and minute (a burst, then one every 6 s).
        signin_limit_per_minute: Type.Integer({ minimum: 1, maximum: 10_000, default: 10 }),
        // Consecutive failed sign-ins of one operator name before it is locked for lockout_ms.
        lockout_failures: Type.Integer({ minimum: 1, maximum: 1_000, default: 5 }),
        lockout_ms: Type.Integer({ minimum: 100, maximum: 24 * 60 * MINUTE, default: 15 * MINUTE }),
        // NIST SP 800-63B: at least 15 characters for a password that is the only factor.
        password_min_length: Type.Integer({ minimum: 8, maximum: 256, default: 15 }),
        // Longest span GET /v1/stats/handshakes answers: a year of daily points.
        stats_max_days: Type.Integer({ minimum: 1, maximum: 3_660, default: 366 }),
        // scrypt (RFC 7914) as OWASP lists it: N=2^15, r=8, p=3 costs 32 MiB and about 0.1 s per
        // hash on a small machine. N must be a power of two. Stored with each hash, so a change
        // applies to passwords set from then on.
        scrypt: Type.Object(
          {
            n: Type.Integer({ minimum: 2, maximum: 1_048_576, default: 32_768 }),
            r: Type.Integer({ minimum: 1, maximum: 32, default: 8 }),
            p: Type.Integer({ minimum: 1, maximum: 16, default: 3 }),
            keylen: Type.Integer({ minimum: 16, maximum: 128, default: 32 }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),

    logging: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
        pretty: Type.Union([Type.Literal('auto'), Type.Literal('always'), Type.Literal('never')], { default: 'auto' }),
      },
      { additionalProperties: false, default: {} },
    ),

    /** Providers seeded into the roster at start when absent; the roster itself lives in the database. */
    providers: Type.Array(ProviderSeedSchema, { default: [], maxItems: 10_000 }),
  },
  { additionalProperties: false },
);

export type NeuronConfig = Static<typeof ConfigSchema>;
export type ProviderSeed = Static<typeof ProviderSeedSchema>;

/** Dotted paths of options whose values are secrets (redacted by `neuron config --print`). */
export function secretPaths(): string[] {
  const found: string[] = [];
  const walk = (schema: Record<string, unknown>, path: string): void => {
    if (schema['x-secret'] === true) found.push(path);
    const properties = schema['properties'] as Record<string, Record<string, unknown>> | undefined;
    if (properties) for (const [key, child] of Object.entries(properties)) walk(child, path ? `${path}.${key}` : key);
  };
  walk(ConfigSchema as unknown as Record<string, unknown>, '');
  return found;
}
