/**
 * The crash scenario, shared by test/hardening/crash.test.ts (one kill) and the stress run
 * (several): a Neuron process under sustained handshakes from the patient client library is
 * killed with SIGKILL at an arbitrary moment, restarted on the same data directory, and its
 * records are checked against what the patients were told.
 *
 * What must hold after every kill:
 * - every relationship whose `handshake.complete` reached the patient exists, active, for that
 *   patient (by relationship id);
 * - no half-written record: each relationship has its directory entry, its one provider notice
 *   and its `handshake.completed` audit entry; no directory entry or notice exists without its
 *   relationship (handshakes cut off by the kill left all of it or none of it);
 * - the audit chain verifies (`neuron audit verify`, the operator's command);
 * - after the restart, the provider notices still pending are delivered to the provider's
 *   notification URL (a real HTTP server here), signed by the organization key;
 * - a patient that completed before the kill gets `existing` with the same relationship id;
 * - every acknowledged handshake's audit receipt (verified by the client when it arrived) is
 *   consistent with the tree after the restart: the consistency proof from the receipt's tree
 *   size to the new signed tree head verifies under the organization key.
 *
 * A SIGKILL tests what the Neuron promises at the application level (commit before answer, one
 * transaction per handshake, leases that expire); what survives power loss on top of that is the
 * database's fsync policy (storage.sqlite_synchronous, docs/security.md).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { rmSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import {
  createConsentToken,
  establishRelationship,
  generatePatientKeys,
  verifyReceiptConsistency,
  type PatientKeys,
  type Receipt,
} from 'neuron-careagent-client';
import { verifyProviderNotice } from '../../src/domains/outbox/signing.ts';
import { readTreeHeadsFile } from '../../src/domains/audit/index.ts';
import { Prng } from './fuzz.ts';
import { killHard, startNeuronProcess, stopNeuronProcess, writeNeuronConfig, type NeuronProcess } from './process.ts';
import { runNeuronCli } from '../helpers/cli.ts';

export const CRASH_PROVIDER_NPI = '1679576722';

export interface CrashOptions {
  seed: number;
  /** Kill/restart cycles. */
  cycles: number;
  /** Patients handshaking at once. */
  workers: number;
  /** Each kill lands after this many completions in its cycle (a seeded number in the range), plus a seeded delay of 0-40 ms. */
  killAfter: [number, number];
  /** handshake.max_concurrent_handshakes */
  ceiling: number;
  /** Longest wait for the pending notices after the last restart. */
  deliveryTimeoutMs: number;
  log?: (line: string) => void;
  /** Keep the data directory (for inspection); removed otherwise. */
  keep?: boolean;
}

export interface CrashReport {
  seed: number;
  cycles: number;
  /** Completions the patients saw, over all cycles. */
  acknowledged: number;
  /** Handshakes that were in flight when a kill landed (their outcome unknown to the patient). */
  cutOff: number;
  /** Of those, how many had committed whole before the kill. */
  cutOffCommitted: number;
  relationships: number;
  /** Notices pending in the database right after the last kill. */
  pendingAtLastKill: number;
  /** Distinct relationships whose notice the provider received, and duplicate deliveries (at least once). */
  noticesReceived: number;
  duplicateDeliveries: number;
  badSignatures: number;
  /** Receipts checked against the tree head after the last restart (one per acknowledged handshake). */
  receiptsConsistent: number;
  /** Problems found; empty when everything held. */
  problems: string[];
  auditVerify: string[];
  seconds: number;
}

interface Completed {
  agentId: string;
  keys: PatientKeys;
  relationshipId: string;
  receipt: Receipt;
}

/**
 * Checks every receipt against the running Neuron's current tree head with the consistency proof
 * it serves (one proof per distinct receipt tree size); returns how many held and the problems.
 */
async function checkReceipts(
  baseUrl: string,
  neuronKey: string,
  acknowledged: readonly Completed[],
): Promise<{ consistent: number; problems: string[] }> {
  const problems: string[] = [];
  const head = (await (await fetch(`${baseUrl}/v1/audit/tree-head`)).json()) as { tree_size: number };
  const proofs = new Map<number, string[]>();
  let consistent = 0;
  for (const done of acknowledged) {
    const size = done.receipt.tree_head.tree_size;
    let proof = proofs.get(size);
    if (proof === undefined) {
      const answer = (await (await fetch(`${baseUrl}/v1/audit/proofs/consistency?first=${size}&second=${head.tree_size}`)).json()) as {
        proof?: string[];
      };
      proof = answer.proof ?? [];
      proofs.set(size, proof);
    }
    try {
      verifyReceiptConsistency(done.receipt, head, proof, neuronKey);
      consistent += 1;
    } catch (error) {
      problems.push(
        `the receipt of relationship ${done.relationshipId} (tree size ${size}) is not consistent with the tree head of size ${head.tree_size}: ${(error as Error).message}`,
      );
    }
  }
  return { consistent, problems };
}

/** The provider CareAgent's notification URL: records every delivery; answers 503 to every other request until told to accept all. */
class ProviderReceiver {
  readonly deliveries: Array<{ relationshipId: string; eventId: string; body: string; signature: string | undefined }> = [];
  acceptAll = false;
  #requests = 0;
  #server: Server | null = null;

  async start(): Promise<string> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 1024 * 1024) chunks.push(chunk);
      });
      req.on('end', () => {
        this.#requests += 1;
        const body = Buffer.concat(chunks).toString('utf8');
        if (!this.acceptAll && this.#requests % 2 === 1) {
          res.writeHead(503, { 'retry-after': '1' }).end();
          return;
        }
        try {
          const notice = JSON.parse(body) as { relationship_id?: string; event_id?: string };
          this.deliveries.push({
            relationshipId: String(notice.relationship_id),
            eventId: String(notice.event_id),
            body,
            signature: req.headers['neuron-signature'] as string | undefined,
          });
          res.writeHead(200).end();
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/careagent/notices`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

interface DbFacts {
  relationships: Array<{ id: string; patient_agent_id: string; status: string }>;
  patients: Set<string>;
  notices: Map<string, number>;
  noticeStatus: Record<string, number>;
  completedAudit: Map<string, number>;
  orphanNotices: number;
}

function readFacts(sqliteFile: string): DbFacts {
  const db = new BetterSqlite3(sqliteFile, { fileMustExist: true, readonly: true });
  try {
    const relationships = db.prepare('SELECT id, patient_agent_id, status FROM relationships').all() as DbFacts['relationships'];
    const patients = new Set((db.prepare('SELECT patient_agent_id AS id FROM patients').all() as Array<{ id: string }>).map((r) => r.id));
    const notices = new Map<string, number>();
    const noticeStatus: Record<string, number> = {};
    let orphanNotices = 0;
    const ids = new Set(relationships.map((r) => r.id));
    for (const row of db.prepare(`SELECT body, status FROM outbox WHERE kind = 'provider.relationship'`).all() as Array<{
      body: string;
      status: string;
    }>) {
      const id = String((JSON.parse(row.body) as { relationship_id?: unknown }).relationship_id);
      notices.set(id, (notices.get(id) ?? 0) + 1);
      noticeStatus[row.status] = (noticeStatus[row.status] ?? 0) + 1;
      if (!ids.has(id)) orphanNotices += 1;
    }
    const completedAudit = new Map<string, number>();
    for (const row of db.prepare(`SELECT details FROM audit_log WHERE event_type = 'handshake.completed'`).all() as Array<{
      details: string;
    }>) {
      const details = JSON.parse(row.details) as { relationship_id?: unknown; status?: unknown };
      if (details.status === 'new')
        completedAudit.set(String(details.relationship_id), (completedAudit.get(String(details.relationship_id)) ?? 0) + 1);
    }
    return { relationships, patients, notices, noticeStatus, completedAudit, orphanNotices };
  } finally {
    db.close();
  }
}

/** The record checks after a kill; returns the problems found. */
function checkRecords(facts: DbFacts, acknowledged: readonly Completed[], label: string): string[] {
  const problems: string[] = [];
  const byId = new Map(facts.relationships.map((r) => [r.id, r]));
  for (const done of acknowledged) {
    const row = byId.get(done.relationshipId);
    if (!row) problems.push(`${label}: relationship ${done.relationshipId} was confirmed to ${done.agentId} but is missing`);
    else if (row.patient_agent_id !== done.agentId || row.status !== 'active')
      problems.push(`${label}: relationship ${done.relationshipId} is ${row.status} for ${row.patient_agent_id}`);
  }
  const withRelationship = new Set<string>();
  for (const r of facts.relationships) {
    withRelationship.add(r.patient_agent_id);
    if (!facts.patients.has(r.patient_agent_id)) problems.push(`${label}: relationship ${r.id} has no directory entry`);
    if (facts.notices.get(r.id) !== 1) problems.push(`${label}: relationship ${r.id} has ${facts.notices.get(r.id) ?? 0} provider notices`);
    if (facts.completedAudit.get(r.id) !== 1)
      problems.push(`${label}: relationship ${r.id} has ${facts.completedAudit.get(r.id) ?? 0} handshake.completed (new) audit entries`);
  }
  for (const id of facts.patients) if (!withRelationship.has(id)) problems.push(`${label}: directory entry ${id} without a relationship`);
  if (facts.orphanNotices > 0) problems.push(`${label}: ${facts.orphanNotices} provider notices without a relationship`);
  for (const id of facts.completedAudit.keys())
    if (!byId.has(id)) problems.push(`${label}: audit entry for relationship ${id}, which does not exist`);
  return problems;
}

async function auditVerify(configFile: string): Promise<{ ok: boolean; line: string }> {
  const result = await runNeuronCli(configFile, ['audit', 'verify']);
  return { ok: result.code === 0, line: `exit ${result.code}: ${(result.stdout + result.stderr).trim().split('\n')[0] ?? ''}` };
}

export async function runCrashScenario(options: CrashOptions): Promise<CrashReport> {
  const began = performance.now();
  const log = options.log ?? (() => undefined);
  const prng = new Prng(options.seed);
  const receiver = new ProviderReceiver();
  const notificationUrl = await receiver.start();
  const { dir, configFile, dataDir } = writeNeuronConfig({
    handshake: { max_concurrent_handshakes: options.ceiling },
    // Fast retries so notices the receiver refused are retried within the run. A notice claimed
    // by the killed process stays reserved until its lease runs out (another instance might still
    // be delivering it): the lease is the request timeout plus 5 s here, 60 s by default.
    outbox: {
      poll_interval_ms: 100,
      backoff_initial_ms: 50,
      backoff_max_ms: 400,
      request_timeout_ms: 1_000,
      lease_ms: 100,
      max_attempts: 100,
    },
    // Checkpoints signed often, so some kills land near one.
    audit: { checkpoint_interval_ms: 250 },
    providers: [
      {
        npi: CRASH_PROVIDER_NPI,
        name: 'Dr. Crash Test',
        provider_types: ['physician'],
        provider_endpoint: 'wss://provider-crash.example/agent',
        notification_url: notificationUrl,
        status: 'active',
      },
    ],
  });
  const sqliteFile = path.join(dataDir, 'neuron.sqlite');
  const acknowledged: Completed[] = [];
  const problems: string[] = [];
  const auditLines: string[] = [];
  let cutOff = 0;
  let cutOffCommitted = 0;
  let pendingAtLastKill = 0;
  let patientCounter = 0;
  let neuronKey: string | null = null;
  let neuron: NeuronProcess | null = null;

  const handshake = async (url: string, patient: { agentId: string; keys: PatientKeys }) => {
    const consentToken = createConsentToken(
      { patientAgentId: patient.agentId, providerNpi: CRASH_PROVIDER_NPI, consentedActions: ['office_visit'] },
      patient.keys,
    );
    return establishRelationship(url, {
      patientAgentId: patient.agentId,
      keys: patient.keys,
      endpoint: `wss://${patient.agentId}.patients.example/agent`,
      consentToken,
      timeoutMs: 30_000,
      requireReceipt: true,
    });
  };

  try {
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      neuron = await startNeuronProcess(configFile, dataDir);
      const current = neuron;
      const killAt = prng.int(options.killAfter[0], options.killAfter[1]);
      const killDelayMs = prng.int(0, 40);
      log(`cycle ${cycle}: Neuron pid ${current.pid}; SIGKILL after ${killAt} completions + ${killDelayMs} ms`);
      let completedThisCycle = 0;
      let killed = false;
      const inFlightAtKill: Array<{ agentId: string; keys: PatientKeys }> = [];
      let killing: Promise<void> | null = null;
      const inFlight = new Set<{ agentId: string; keys: PatientKeys }>();

      const worker = async (): Promise<void> => {
        while (!killed) {
          const patient = { agentId: `crash-${options.seed}-${++patientCounter}`, keys: generatePatientKeys() };
          inFlight.add(patient);
          try {
            const result = await handshake(current.handshakeUrl, patient);
            neuronKey ??= result.neuronPublicKey;
            if (result.status !== 'new') problems.push(`cycle ${cycle}: a fresh patient got ${result.status}`);
            acknowledged.push({
              agentId: patient.agentId,
              keys: patient.keys,
              relationshipId: result.relationshipId,
              receipt: result.receipt!,
            });
            completedThisCycle += 1;
            if (completedThisCycle === killAt && killing === null) {
              killing = (async () => {
                await sleep(killDelayMs);
                inFlightAtKill.push(...inFlight);
                killed = true;
                await killHard(current);
              })();
            }
          } catch (error) {
            // Only the kill may fail a handshake here.
            if (!killed && killing === null)
              problems.push(`cycle ${cycle}: a handshake failed before the kill: ${(error as Error).message}`);
          } finally {
            inFlight.delete(patient);
          }
        }
      };
      await Promise.all(Array.from({ length: options.workers }, worker));
      await killing;
      const exit = await current.exited;
      if (exit.signal !== 'SIGKILL')
        problems.push(`cycle ${cycle}: the Neuron exited with ${exit.code ?? exit.signal} before it was killed:\n${current.output()}`);
      cutOff += inFlightAtKill.length;

      // The operator's first look after a crash: the audit chain, then the records.
      const verify = await auditVerify(configFile);
      auditLines.push(`after kill ${cycle}: ${verify.line}`);
      if (!verify.ok) problems.push(`after kill ${cycle}: neuron audit verify failed: ${verify.line}`);
      // Each head is written to the tree-head file before the answers its commit releases: a killed
      // process leaves the head of every acknowledged receipt (or a larger one) in the file.
      const fileSize = Math.max(0, ...readTreeHeadsFile(dataDir).map((head) => head.tree_size));
      const largestReceipt = Math.max(0, ...acknowledged.map((done) => done.receipt.tree_head.tree_size));
      if (fileSize < largestReceipt)
        problems.push(
          `after kill ${cycle}: the tree-head file ends at size ${fileSize}, below an acknowledged receipt's ${largestReceipt}`,
        );
      const facts = readFacts(sqliteFile);
      problems.push(...checkRecords(facts, acknowledged, `after kill ${cycle}`));
      const cut = new Set(inFlightAtKill.map((p) => p.agentId));
      cutOffCommitted += facts.relationships.filter((r) => cut.has(r.patient_agent_id)).length;
      pendingAtLastKill = facts.noticeStatus['pending'] ?? 0;
      log(
        `  ${completedThisCycle} confirmed, ${inFlightAtKill.length} cut off (${facts.relationships.filter((r) => cut.has(r.patient_agent_id)).length} of them committed), ${facts.relationships.length} relationships, notices ${JSON.stringify(facts.noticeStatus)}`,
      );
    }

    // The last restart: the provider is reachable again; every notice must arrive.
    receiver.acceptAll = true;
    neuron = await startNeuronProcess(configFile, dataDir);
    log(`restart: Neuron pid ${neuron.pid}`);
    // Patients confirmed before a kill come back: the same relationship, `existing`.
    for (const done of [acknowledged[0], acknowledged[acknowledged.length - 1]].filter((d): d is Completed => d !== undefined)) {
      const again = await handshake(neuron.handshakeUrl, done);
      if (again.status !== 'existing' || again.relationshipId !== done.relationshipId)
        problems.push(`a returning patient got ${again.status} ${again.relationshipId}, expected existing ${done.relationshipId}`);
    }
    // Every receipt a patient holds still proves its entry: the restarted tree extends each one.
    const receipts =
      neuronKey === null
        ? { consistent: 0, problems: ['no handshake completed'] }
        : await checkReceipts(neuron.url, neuronKey, acknowledged);
    problems.push(...receipts.problems);
    const deadline = Date.now() + options.deliveryTimeoutMs;
    let facts = readFacts(sqliteFile);
    for (;;) {
      const received = new Set(receiver.deliveries.map((d) => d.relationshipId));
      const allDelivered = (facts.noticeStatus['pending'] ?? 0) === 0 && facts.relationships.every((r) => received.has(r.id));
      if (allDelivered || Date.now() > deadline) break;
      await sleep(100);
      facts = readFacts(sqliteFile);
    }
    const received = new Set(receiver.deliveries.map((d) => d.relationshipId));
    const undelivered = facts.relationships.filter((r) => !received.has(r.id));
    if (undelivered.length > 0)
      problems.push(
        `${undelivered.length} provider notices not delivered within ${options.deliveryTimeoutMs} ms after the restart (outbox ${JSON.stringify(facts.noticeStatus)})`,
      );
    if ((facts.noticeStatus['dead'] ?? 0) > 0) problems.push(`${facts.noticeStatus['dead']} notices dead-lettered`);
    problems.push(...checkRecords(facts, acknowledged, 'after restart'));
    let badSignatures = 0;
    for (const delivery of receiver.deliveries)
      if (neuronKey === null || !verifyProviderNotice(delivery.body, delivery.signature, neuronKey)) badSignatures += 1;
    if (badSignatures > 0) problems.push(`${badSignatures} deliveries without a valid organization signature`);

    const stopCode = await stopNeuronProcess(neuron);
    if (stopCode !== 0) problems.push(`the restarted Neuron stopped with exit code ${stopCode}:\n${neuron.output()}`);
    neuron = null;
    const finalVerify = await auditVerify(configFile);
    auditLines.push(`after clean stop: ${finalVerify.line}`);
    if (!finalVerify.ok) problems.push(`after the clean stop: neuron audit verify failed: ${finalVerify.line}`);

    return {
      seed: options.seed,
      cycles: options.cycles,
      acknowledged: acknowledged.length,
      cutOff,
      cutOffCommitted,
      relationships: facts.relationships.length,
      pendingAtLastKill,
      noticesReceived: received.size,
      duplicateDeliveries: receiver.deliveries.length - received.size,
      badSignatures,
      receiptsConsistent: receipts.consistent,
      problems,
      auditVerify: auditLines,
      seconds: (performance.now() - began) / 1000,
    };
  } finally {
    if (neuron) await killHard(neuron);
    await receiver.stop();
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
  }
}
