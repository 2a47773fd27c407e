/**
 * `neuron audit monitor URL`: what any other party (an auditor, another Neuron, a patient's
 * agent) runs against a Neuron to watch its audit log. Each run fetches the current signed tree
 * head, checks its signature under the key pinned on the first run, checks that it extends the
 * head kept from the last run (RFC 9162 consistency proof from the Neuron's public proof route),
 * and keeps the new one in the state file. A fork, a truncation or a bad signature is reported
 * and the old head is kept, so every later run keeps failing until a person looks.
 */
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { verifyConsistency } from 'neuron-careagent-client/protocol';
import { parseTreeHead, treeHeadSignedBy, type TreeHead } from './tree-head.ts';

export interface MonitorState {
  /** The Neuron's public key, pinned on the first run. */
  public_key: string;
  tree_head: TreeHead;
}

export type MonitorOutcome =
  | { ok: true; message: string; head: TreeHead }
  | { ok: false; kind: 'fork' | 'truncation' | 'signature' | 'unreachable'; message: string };

export interface MonitorOptions {
  /** The Neuron's base URL (http://host:port), without /v1/... */
  baseUrl: string;
  stateFile: string;
  fetch?: typeof fetch;
}

function readState(file: string): MonitorState | null {
  if (!existsSync(file)) return null;
  const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<MonitorState>;
  if (typeof value.public_key !== 'string') throw new TypeError(`${file} is not a monitor state file (no public_key)`);
  return { public_key: value.public_key, tree_head: parseTreeHead(value.tree_head) };
}

function writeState(file: string, state: MonitorState): void {
  // Written aside and renamed, so a crash never leaves half a state file.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

async function getJson(fetcher: typeof fetch, url: string): Promise<unknown> {
  const response = await fetcher(url, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json() as Promise<unknown>;
}

export async function monitorOnce(options: MonitorOptions): Promise<MonitorOutcome> {
  const fetcher = options.fetch ?? fetch;
  const base = options.baseUrl.replace(/\/+$/, '');
  let head: TreeHead;
  try {
    head = parseTreeHead(await getJson(fetcher, `${base}/v1/audit/tree-head`));
  } catch (error) {
    return { ok: false, kind: 'unreachable', message: `cannot read the tree head: ${(error as Error).message}` };
  }
  const state = readState(options.stateFile);
  const publicKey = state?.public_key ?? head.key.public_key;
  if (!treeHeadSignedBy(head, new Set([publicKey]))) {
    return {
      ok: false,
      kind: 'signature',
      message: `the tree head of size ${head.tree_size} is not signed by the pinned key ${publicKey}`,
    };
  }
  const kept = state?.tree_head;
  if (kept !== undefined) {
    if (head.tree_size < kept.tree_size) {
      return { ok: false, kind: 'truncation', message: `the log shrank from ${kept.tree_size} to ${head.tree_size} entries (truncated)` };
    }
    let proof: Buffer[] = [];
    if (head.tree_size > kept.tree_size) {
      try {
        const answer = (await getJson(fetcher, `${base}/v1/audit/proofs/consistency?first=${kept.tree_size}&second=${head.tree_size}`)) as {
          proof?: unknown;
        };
        proof = (Array.isArray(answer.proof) ? answer.proof : []).map((h) => Buffer.from(String(h), 'hex'));
      } catch (error) {
        return { ok: false, kind: 'unreachable', message: `cannot read the consistency proof: ${(error as Error).message}` };
      }
    }
    if (!verifyConsistency(kept.tree_size, head.tree_size, Buffer.from(kept.root_hash, 'hex'), Buffer.from(head.root_hash, 'hex'), proof)) {
      return {
        ok: false,
        kind: 'fork',
        message: `the tree head of size ${head.tree_size} does not extend the one of size ${kept.tree_size} kept earlier (a fork, or entries rewritten)`,
      };
    }
  }
  writeState(options.stateFile, { public_key: publicKey, tree_head: head });
  const grew = kept === undefined ? `first run: key ${publicKey} pinned` : `grew from ${kept.tree_size}`;
  return { ok: true, message: `tree head of size ${head.tree_size} verified (${grew})`, head };
}
