/**
 * `node --import tsx bench/profile-summary.ts <file.cpuprofile> [--main-thread-ms X]`: where a
 * Neuron's main thread spent its time in a V8 CPU profile (BENCH_PROFILE_DIR of `npm run bench`),
 * by component, as shares of the busy samples (idle and start-up left out); with the main thread's
 * measured CPU per handshake (`of it main thread` of the pinned bench), also in milliseconds per
 * handshake, summing to that figure. Frames of the bundle (`dist/server/`) are mapped back to
 * their sources through its source maps, so components follow the source folders.
 *
 * The profiler samples the thread's wall time: a blocking system call (the COMMIT's fsync) counts
 * as its caller's while it waits. With commits shared by a group that wait is small; it is still
 * inside the SQLite component.
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

/** Components in the order they are tried: the first whose pattern matches a frame's source takes its samples. */
const COMPONENTS: Array<[name: string, pattern: RegExp]> = [
  ['idle', /^\(idle\)$/],
  ['start-up (module loading, compiling; not in the measured batch)', /modules\/esm|modules\/cjs|bootstrap\/|\(evaluate\)|\(parse\)|vm:/],
  ['garbage collector', /^\(garbage collector\)$/],
  ['Ed25519, SHA-256 and key import (node:crypto)', /node:internal\/crypto/],
  [
    'WebSocket and HTTP transport (ws, net, http, streams, events)',
    /node_modules\/ws\/|node:net|node:_http|node:http|internal\/streams|stream_base|node:events|internal\/http|^(writev|writeBuffer|writeUtf8String|close|shutdown|readStop|readStart|getpeername)$/,
  ],
  ['SQLite: statements, BEGIN and COMMIT (storage, kysely, better-sqlite3)', /foundation\/storage|node_modules\/kysely|better-sqlite3/],
  ['audit log: entry, Merkle tree, tree head (audit, merkle, canonical JSON)', /domains\/audit|protocol\/merkle|canonicalize/],
  ['tree-head file (fs)', /fs\/promises|node:fs|^(fdatasync|open|writeString)$/],
  ['handshake session, broker and service', /domains\/handshake/],
  ['protocol checks and messages (client package, ajv)', /packages\/client|protocol\/|node_modules\/ajv/],
  ['other domains (relationships, directory, outbox, webhooks, providers)', /src\/domains|src\/foundation|src\/network|src\//],
  ['metrics and logging (prom-client, pino)', /prom-client|pino/],
];
const OTHER = 'V8 and Node internals (timers, microtasks, errors, buffers, (program))';

const sourceMaps = new Map<string, SourceMap | null>();

/** A frame's original source: the bundle's through its source map, anything else as V8 names it. */
function sourceOf(frame: CallFrame): string {
  // Native functions and V8's pseudo-frames ("(idle)", "(garbage collector)", "(program)") have no URL.
  if (frame.url === '') return frame.functionName;
  if (!frame.url.includes('/dist/')) return frame.url;
  const file = frame.url.replace(/^file:\/\//, '');
  if (!sourceMaps.has(file)) {
    try {
      sourceMaps.set(file, new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))));
    } catch {
      sourceMaps.set(file, null);
    }
  }
  const entry = sourceMaps.get(file)?.findEntry(frame.lineNumber, frame.columnNumber);
  return entry !== undefined && 'originalSource' in entry ? entry.originalSource : frame.url;
}

function componentOf(frame: CallFrame): string {
  const source = sourceOf(frame);
  return COMPONENTS.find(([, pattern]) => pattern.test(source))?.[0] ?? OTHER;
}

function summarize(profile: Profile): Map<string, number> {
  const samplesPerNode = new Map<number, number>();
  for (const id of profile.samples) samplesPerNode.set(id, (samplesPerNode.get(id) ?? 0) + 1);
  const byComponent = new Map<string, number>();
  for (const node of profile.nodes) {
    const samples = samplesPerNode.get(node.id);
    if (samples === undefined) continue;
    const component = componentOf(node.callFrame);
    byComponent.set(component, (byComponent.get(component) ?? 0) + samples);
  }
  return byComponent;
}

function main(): void {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: profile-summary.ts <file.cpuprofile> [--main-thread-ms X]');
  const at = process.argv.indexOf('--main-thread-ms');
  const mainThreadMs = at >= 0 ? Number(process.argv[at + 1]) : null;
  const byComponent = summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  const busy = [...byComponent].filter(([name]) => name !== 'idle' && !name.startsWith('start-up'));
  const busySamples = busy.reduce((sum, [, samples]) => sum + samples, 0);
  const lines = [
    `| component | share of busy samples${mainThreadMs === null ? '' : ' | ms per handshake'} |`,
    `|---|---:|${mainThreadMs === null ? '' : '---:|'}`,
  ];
  for (const [name, samples] of busy.sort((a, b) => b[1] - a[1])) {
    const share = samples / busySamples;
    lines.push(`| ${name} | ${(100 * share).toFixed(1)} % |${mainThreadMs === null ? '' : ` ${(share * mainThreadMs).toFixed(3)} |`}`);
  }
  if (mainThreadMs !== null) lines.push(`| **main thread, total** | 100 % | **${mainThreadMs.toFixed(3)}** |`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();
