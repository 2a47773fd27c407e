/**
 * `neuron audit monitor URL`: what any other party (an auditor, another Neuron, a patient's
 * agent) runs against a Neuron to watch its audit log. Each run fetches the current signed tree
 * head, checks its signature under the key pinned on the first run, checks that it extends the
 * head kept from the last run (RFC 9162 consistency proof from the Neuron's public proof route),
 * and keeps the new one in the state file. When the organization rotated its key since the kept
 * head, the monitor follows the rotation entries the new head includes (GET
 * /v1/audit/key-rotations), each signed by the key trusted before it, and pins the new key. A fork, a truncation or a bad signature is reported
 * and the old head is kept, so every later run keeps failing until a person looks.
 */
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { leafHash, verifyConsistency, verifyInclusion } from 'neuron-careagent-client/protocol';
import { parseTreeHead, treeHeadSignedBy, type TreeHead } from './tree-head.ts';
import { KEY_ROTATION_EVENT, checkKeyRotation } from './rotation.ts';

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
  let publicKey = state?.public_key ?? head.key.public_key;
  if (state !== null && head.key.public_key !== publicKey && head.tree_size > state.tree_head.tree_size) {
    const followed = await followRotations(fetcher, base, head, state);
    if ('problem' in followed) return { ok: false, kind: 'signature', message: followed.problem };
    publicKey = followed.publicKey;
  }
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
  const rotated = state !== null && publicKey !== state.public_key ? `; followed the key rotation to ${publicKey}` : '';
  const grew = kept === undefined ? `first run: key ${publicKey} pinned` : `grew from ${kept.tree_size}${rotated}`;
  return { ok: true, message: `tree head of size ${head.tree_size} verified (${grew})`, head };
}

/**
 * The key trusted at `head` after the rotations logged since the kept head: each rotation entry
 * must be included in `head` and signed by the key trusted before it. The head's own signature is
 * checked by the caller under the key returned, which makes its root (and so the inclusions) true.
 */
async function followRotations(
  fetcher: typeof fetch,
  base: string,
  head: TreeHead,
  state: MonitorState,
): Promise<{ publicKey: string } | { problem: string }> {
  let answer: { rotations?: Array<{ entry?: unknown; leaf_index?: unknown; inclusion_proof?: unknown }> };
  try {
    answer = (await getJson(fetcher, `${base}/v1/audit/key-rotations?tree_size=${head.tree_size}`)) as typeof answer;
  } catch (error) {
    return { problem: `the tree head is signed by another key and its rotation cannot be read: ${(error as Error).message}` };
  }
  let trusted = state.public_key;
  for (const rotation of answer.rotations ?? []) {
    const leafIndex = Number(rotation.leaf_index);
    if (!Number.isSafeInteger(leafIndex) || leafIndex < state.tree_head.tree_size) continue; // already behind the kept head
    const text = String(rotation.entry);
    const proof = (Array.isArray(rotation.inclusion_proof) ? rotation.inclusion_proof : []).map((h) => Buffer.from(String(h), 'hex'));
    let entry: { seq?: unknown; event_type?: unknown; details?: unknown };
    try {
      entry = JSON.parse(text) as typeof entry;
    } catch {
      return { problem: `the key rotation at leaf ${leafIndex} is not JSON` };
    }
    if (entry.seq !== leafIndex + 1 || entry.event_type !== KEY_ROTATION_EVENT) {
      return { problem: `the entry served at leaf ${leafIndex} is not a key rotation` };
    }
    if (!verifyInclusion(leafIndex, head.tree_size, leafHash(Buffer.from(text)), proof, Buffer.from(head.root_hash, 'hex'))) {
      return { problem: `the key rotation at entry ${leafIndex + 1} is not included in the tree head of size ${head.tree_size}` };
    }
    const checked = checkKeyRotation(JSON.stringify(entry.details), new Set([trusted]));
    if ('problem' in checked) return { problem: `the key rotation at entry ${leafIndex + 1} does not verify: ${checked.problem}` };
    trusted = checked.newPublicKey;
  }
  return { publicKey: trusted };
}
