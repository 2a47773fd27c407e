/**
 * Reading back what a handshake wrote, for assertions.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Neuron } from '../../src/main.ts';

export interface WrittenFor {
  relationships: number;
  patients: number;
  outbox: number;
}

/** Rows that mention this patient agent: relationships, directory entries, outbox notices. */
export async function writtenFor(neuron: Neuron, patientAgentId: string): Promise<WrittenFor> {
  const db = neuron.storage.db;
  const relationships = await db.selectFrom('relationships').select('id').where('patient_agent_id', '=', patientAgentId).execute();
  const patients = await db.selectFrom('patients').select('patient_agent_id').where('patient_agent_id', '=', patientAgentId).execute();
  const outbox = await db.selectFrom('outbox').select('seq').where('body', 'like', `%"${patientAgentId}"%`).execute();
  return { relationships: relationships.length, patients: patients.length, outbox: outbox.length };
}

export interface AuditRow {
  seq: number;
  event_type: string;
  actor: string;
  details: Record<string, unknown>;
}

export async function auditEntries(neuron: Neuron, eventType: string): Promise<AuditRow[]> {
  const rows = await neuron.storage.db
    .selectFrom('audit_log')
    .select(['seq', 'event_type', 'actor', 'details'])
    .where('event_type', '=', eventType)
    .orderBy('seq', 'asc')
    .execute();
  return rows.map((row) => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> }));
}

/** Waits (up to `timeoutMs`) until `check` returns true. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 3_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await sleep(10);
  }
}
