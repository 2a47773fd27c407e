/**
 * `neuron demo`: the whole consent handshake on one machine in a few seconds. A temporary Neuron
 * (temporary directory, a free port, discovery and registry off) gets a synthetic provider; a
 * patient CareAgent built on the client library (src/client) establishes a relationship with it,
 * then does it again to show `existing`; the demo prints what each side saw and what the Neuron
 * recorded, then stops the Neuron and removes its directory. Synthetic data only. The CLI
 * (src/cli/commands/demo.ts) passes in the composition root's createNeuron.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  createConsentToken,
  establishRelationship,
  generatePatientKeys,
  HandshakeError,
  type RelationshipResult,
} from 'neuron-careagent-client';
import { loadConfig, type LoadedConfig } from '../foundation/config/index.ts';
import { createLogger } from '../foundation/observability/logger.ts';
import type { Logger } from 'pino';
import type { Db } from '../foundation/storage/index.ts';

/** A published synthetic test NPI (Luhn-valid with the 80840 prefix); it belongs to nobody. */
export const DEMO_PROVIDER_NPI = '1679576722';
const DEMO_PROVIDER_ENDPOINT = 'wss://provider.example/agent';
const DEMO_ORGANIZATION_NPI = '1245319599';

/** What the demo uses of a Neuron (src/main.ts's Neuron has it all). */
export interface DemoNeuron {
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { handshakeUrl: string };
  readonly organizationKey: { publicKey: string };
  readonly storage: { db: Db };
}

export interface DemoOptions {
  /** Where lines go (the CLI passes its stdout writer). */
  print: (line?: string) => void;
  /** Highlighting for terminals; identity by default. */
  paint?: (style: 'bold' | 'green' | 'cyan' | 'dim' | 'yellow', text: string) => string;
  /** Builds the temporary Neuron: src/main.ts's createNeuron, passed in by the CLI. */
  createNeuron: (loaded: LoadedConfig, options: { logger: Logger; defaultMetrics: boolean }) => DemoNeuron;
}

type Paint = NonNullable<DemoOptions['paint']>;

/** The demo's output: numbered steps, each with indented label/value details. */
class DemoPrinter {
  readonly print: (line?: string) => void;
  readonly paint: Paint;

  constructor(options: { print: (line?: string) => void; paint: Paint }) {
    this.print = options.print;
    this.paint = options.paint;
  }

  step(n: number, text: string): void {
    this.print(`${this.paint('cyan', `${n}.`)} ${text}`);
  }

  detail(label: string, value: string): void {
    this.print(`     ${this.paint('dim', label.padEnd(14))} ${value}`);
  }
}

export interface DemoResult {
  first: RelationshipResult;
  second: RelationshipResult;
}

/** Writes the temporary Neuron's config file (discovery and registry off, one synthetic provider); returns its path. */
function writeDemoConfig(dir: string): string {
  const configFile = path.join(dir, 'neuron.config.json');
  const config = {
    organization: { name: 'Demo Practice', npi: DEMO_ORGANIZATION_NPI },
    data_dir: './data',
    server: { host: '127.0.0.1', port: 0 },
    discovery: { enabled: false },
    registry: { enabled: false },
    logging: { level: 'error', pretty: 'never' },
    // Seeded through the roster's own config path, exactly as an operator would.
    providers: [
      {
        npi: DEMO_PROVIDER_NPI,
        name: 'Dr. Demo Provider',
        provider_types: ['physician'],
        specialty: 'family medicine',
        provider_endpoint: DEMO_PROVIDER_ENDPOINT,
        status: 'active',
      },
    ],
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return configFile;
}

/** The synthetic patient CareAgent: its id, key pair, address and a consent token for the demo provider. */
function demoPatient(out: DemoPrinter) {
  const patientAgentId = `demo-patient-${Math.random().toString(36).slice(2, 8)}`;
  const keys = generatePatientKeys();
  const endpoint = `wss://${patientAgentId}.patients.example/agent`;
  out.step(3, `Patient CareAgent ${out.paint('bold', patientAgentId)} made its Ed25519 key pair`);
  out.detail('public key', keys.publicKeyB64);
  out.detail('address', endpoint);
  const consentToken = createConsentToken(
    { patientAgentId, providerNpi: DEMO_PROVIDER_NPI, consentedActions: ['office_visit', 'lab_results'] },
    keys,
  );
  out.step(4, 'It signed a consent token for the provider (dialect A, valid one hour)');
  out.detail('claims', consentToken.claimsJson);
  return { patientAgentId, keys, endpoint, consentToken };
}

function printHandshake(out: DemoPrinter, handshakeUrl: string, first: { result: RelationshipResult; ms: number }): void {
  out.step(5, `Handshake over ${handshakeUrl.split('/').slice(0, 3).join('/')}/ws/handshake in ${first.ms.toFixed(0)} ms:`);
  out.print('       patient -> handshake.auth                  (agent id, public key, address, consent token)');
  out.print('       Neuron  -> handshake.challenge             (token verified, provider active, not blocked: 32 random bytes)');
  out.print('       patient -> handshake.challenge_response    (the bytes signed with its private key, front-desk profile)');
  out.print(`       Neuron  -> handshake.complete              status ${out.paint('green', first.result.status)}, then close 1000`);
  out.detail('relationship', first.result.relationshipId);
  out.detail('provider at', first.result.providerEndpoint);
  out.detail('actions', first.result.consentedActions.join(', '));
  out.detail('attestation', `signed by the Neuron, verified by the patient (issued ${first.result.attested.issued_at})`);
}

/** Reads back what the handshake recorded (relationship, directory entry, provider notice, audit entry) and prints it. */
async function printRecorded(out: DemoPrinter, db: Db, relationshipId: string, patientAgentId: string): Promise<void> {
  const relationship = await db
    .selectFrom('relationships')
    .select(['status', 'established_at', 'token_dialect'])
    .where('id', '=', relationshipId)
    .executeTakeFirstOrThrow();
  const entry = await db
    .selectFrom('patients')
    .select(['profile', 'patient_endpoint'])
    .where('patient_agent_id', '=', patientAgentId)
    .executeTakeFirstOrThrow();
  const notices = await db
    .selectFrom('outbox')
    .select(['event_id', 'status', 'target'])
    .where('kind', '=', 'provider.relationship')
    .where('body', 'like', `%${relationshipId}%`)
    .execute();
  const audit = await db
    .selectFrom('audit_log')
    .select(['seq', 'event_type'])
    .where('event_type', '=', 'handshake.completed')
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  out.step(6, 'The Neuron recorded, in one database transaction:');
  out.detail('relationship', `${relationship.status} since ${relationship.established_at} (token dialect ${relationship.token_dialect})`);
  out.detail('directory', `${patientAgentId} at ${entry.patient_endpoint}, profile ${entry.profile ?? '(none)'}`);
  out.detail(
    'notice',
    notices
      .map((n) => `to provider ${n.target}, event ${n.event_id} (${n.status}), carries the patient's address and the attestation`)
      .join('; ') || '(none)',
  );
  out.detail('audit', audit ? `${audit.event_type} as entry #${audit.seq} of the hash chain` : '(none)');
}

/** Steps 3 to 7 against a started Neuron: the patient, two handshakes, and what was recorded. */
async function runHandshakes(out: DemoPrinter, neuron: DemoNeuron): Promise<DemoResult> {
  const { handshakeUrl } = neuron.address();
  const patient = demoPatient(out);
  const run = async (): Promise<{ result: RelationshipResult; ms: number }> => {
    const began = performance.now();
    const result = await establishRelationship(handshakeUrl, {
      ...patient,
      profile: { display_name: 'Demo Patient', preferred_language: 'en' },
      expectedNeuronPublicKey: neuron.organizationKey.publicKey,
    });
    return { result, ms: performance.now() - began };
  };

  const first = await run();
  printHandshake(out, handshakeUrl, first);
  await printRecorded(out, neuron.storage.db, first.result.relationshipId, patient.patientAgentId);

  const second = await run();
  const same = second.result.relationshipId === first.result.relationshipId;
  out.step(
    7,
    `Same patient key again: status ${out.paint('green', second.result.status)}, ${same ? 'same relationship id' : 'a DIFFERENT relationship id'} (${second.ms.toFixed(0)} ms); no duplicate, no second notice`,
  );
  return { first: first.result, second: second.result };
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = new DemoPrinter({ print: options.print, paint: options.paint ?? ((_style, text) => text) });
  const dir = mkdtempSync(path.join(tmpdir(), 'neuron-demo-'));
  const configFile = writeDemoConfig(dir);
  let neuron: DemoNeuron | null = null;
  try {
    out.print(out.paint('bold', 'Neuron demo: a patient CareAgent and a provider meet through a temporary Neuron'));
    out.print();
    const loaded = loadConfig({ configFile, env: {} });
    neuron = options.createNeuron(loaded, { logger: createLogger({ level: 'error', pretty: 'never' }), defaultMetrics: false });
    await neuron.start();
    out.step(1, `Started a temporary Neuron for Demo Practice (synthetic NPI ${DEMO_ORGANIZATION_NPI})`);
    out.detail('handshake URL', neuron.address().handshakeUrl);
    out.detail('Neuron key', neuron.organizationKey.publicKey);
    out.detail('data', `${loaded.paths.dataDir} (removed at the end)`);
    out.step(2, `Roster: Dr. Demo Provider (synthetic NPI ${DEMO_PROVIDER_NPI}), active, CareAgent at ${DEMO_PROVIDER_ENDPOINT}`);

    const result = await runHandshakes(out, neuron);

    await neuron.stop();
    neuron = null;
    out.step(8, 'Stopped the Neuron; removing its temporary directory.');
    return result;
  } catch (error) {
    if (error instanceof HandshakeError)
      throw new Error(`the demo handshake failed: ${error.code}${error.reason ? ` (${error.reason})` : ''}: ${error.message}`, {
        cause: error,
      });
    throw error;
  } finally {
    if (neuron) await neuron.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
