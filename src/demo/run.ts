/**
 * `neuron demo`: the whole consent handshake on one machine in a few seconds. A temporary Neuron
 * (temporary directory, a free port, discovery and registry off) gets a synthetic provider; a
 * patient CareAgent built on the client library (src/client) establishes a relationship with it,
 * then does it again to show `existing`; the demo prints what each side saw and what the Neuron
 * recorded, then stops the Neuron and removes its directory. Synthetic data only.
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
import { loadConfig } from '../foundation/config/index.ts';
import { createLogger } from '../foundation/observability/logger.ts';
import { createNeuron, type Neuron } from '../main.ts';

/** A published synthetic test NPI (Luhn-valid with the 80840 prefix); it belongs to nobody. */
export const DEMO_PROVIDER_NPI = '1679576722';
const DEMO_PROVIDER_ENDPOINT = 'wss://provider.example/agent';
const DEMO_ORGANIZATION_NPI = '1245319599';

export interface DemoOptions {
  /** Where lines go (the CLI passes its stdout writer). */
  print: (line?: string) => void;
  /** Highlighting for terminals; identity by default. */
  paint?: (style: 'bold' | 'green' | 'cyan' | 'dim' | 'yellow', text: string) => string;
}

export interface DemoResult {
  first: RelationshipResult;
  second: RelationshipResult;
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const print = options.print;
  const paint = options.paint ?? ((_style, text) => text);
  const step = (n: number, text: string): void => print(`${paint('cyan', `${n}.`)} ${text}`);
  const detail = (label: string, value: string): void => print(`     ${paint('dim', label.padEnd(14))} ${value}`);

  const dir = mkdtempSync(path.join(tmpdir(), 'neuron-demo-'));
  const configFile = path.join(dir, 'neuron.config.json');
  writeFileSync(
    configFile,
    JSON.stringify(
      {
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
      },
      null,
      2,
    ),
  );

  let neuron: Neuron | null = null;
  try {
    print(paint('bold', 'Neuron demo: a patient CareAgent and a provider meet through a temporary Neuron'));
    print();
    const loaded = loadConfig({ configFile, env: {} });
    neuron = createNeuron(loaded, { logger: createLogger({ level: 'error', pretty: 'never' }), defaultMetrics: false });
    await neuron.start();
    const { handshakeUrl } = neuron.address();
    step(1, `Started a temporary Neuron for Demo Practice (synthetic NPI ${DEMO_ORGANIZATION_NPI})`);
    detail('handshake URL', handshakeUrl);
    detail('Neuron key', neuron.organizationKey.publicKey);
    detail('data', `${loaded.paths.dataDir} (removed at the end)`);

    step(2, `Roster: Dr. Demo Provider (synthetic NPI ${DEMO_PROVIDER_NPI}), active, CareAgent at ${DEMO_PROVIDER_ENDPOINT}`);

    const patientAgentId = `demo-patient-${Math.random().toString(36).slice(2, 8)}`;
    const keys = generatePatientKeys();
    const endpoint = `wss://${patientAgentId}.patients.example/agent`;
    step(3, `Patient CareAgent ${paint('bold', patientAgentId)} made its Ed25519 key pair`);
    detail('public key', keys.publicKeyB64);
    detail('address', endpoint);

    const consentToken = createConsentToken(
      { patientAgentId, providerNpi: DEMO_PROVIDER_NPI, consentedActions: ['office_visit', 'lab_results'] },
      keys,
    );
    step(4, 'It signed a consent token for the provider (dialect A, valid one hour)');
    detail('claims', consentToken.claimsJson);

    const run = async (): Promise<{ result: RelationshipResult; ms: number }> => {
      const began = performance.now();
      const result = await establishRelationship(handshakeUrl, {
        patientAgentId,
        keys,
        endpoint,
        consentToken,
        profile: { display_name: 'Demo Patient', preferred_language: 'en' },
        expectedNeuronPublicKey: neuron!.organizationKey.publicKey,
      });
      return { result, ms: performance.now() - began };
    };

    const first = await run();
    step(5, `Handshake over ${handshakeUrl.split('/').slice(0, 3).join('/')}/ws/handshake in ${first.ms.toFixed(0)} ms:`);
    print('       patient -> handshake.auth                  (agent id, public key, address, consent token)');
    print('       Neuron  -> handshake.challenge             (token verified, provider active, not blocked: 32 random bytes)');
    print('       patient -> handshake.challenge_response    (the bytes signed with its private key, front-desk profile)');
    print(`       Neuron  -> handshake.complete              status ${paint('green', first.result.status)}, then close 1000`);
    detail('relationship', first.result.relationshipId);
    detail('provider at', first.result.providerEndpoint);
    detail('actions', first.result.consentedActions.join(', '));
    detail('attestation', `signed by the Neuron, verified by the patient (issued ${first.result.attested.issued_at})`);

    const db = neuron.storage.db;
    const relationship = await db
      .selectFrom('relationships')
      .select(['status', 'established_at', 'token_dialect'])
      .where('id', '=', first.result.relationshipId)
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
      .where('body', 'like', `%${first.result.relationshipId}%`)
      .execute();
    const audit = await db
      .selectFrom('audit_log')
      .select(['seq', 'event_type'])
      .where('event_type', '=', 'handshake.completed')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    step(6, 'The Neuron recorded, in one database transaction:');
    detail('relationship', `${relationship.status} since ${relationship.established_at} (token dialect ${relationship.token_dialect})`);
    detail('directory', `${patientAgentId} at ${entry.patient_endpoint}, profile ${entry.profile ?? '(none)'}`);
    detail(
      'notice',
      notices
        .map((n) => `to provider ${n.target}, event ${n.event_id} (${n.status}), carries the patient's address and the attestation`)
        .join('; ') || '(none)',
    );
    detail('audit', audit ? `${audit.event_type} as entry #${audit.seq} of the hash chain` : '(none)');

    const second = await run();
    const same = second.result.relationshipId === first.result.relationshipId;
    step(
      7,
      `Same patient key again: status ${paint('green', second.result.status)}, ${same ? 'same relationship id' : 'a DIFFERENT relationship id'} (${second.ms.toFixed(0)} ms); no duplicate, no second notice`,
    );

    await neuron.stop();
    neuron = null;
    step(8, 'Stopped the Neuron; removing its temporary directory.');
    return { first: first.result, second: second.result };
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
