/**
 * The operator console's web pages at /console on the Neuron's one port (docs/console.md). The
 * console is a single-page application (console/src/, built by scripts/build-console.js into
 * dist/console/) that acts only through the public REST API; this plugin just hands out its files:
 *
 *   GET /console, /console/<any page>   index.html (the application routes in the browser)
 *   GET /console/assets/<file>          the hashed script and style sheet
 *
 * Files come from dist/console/, read once on the first request. When that build is missing or
 * older than console/ (a developer running the sources through tsx), the console is built in
 * memory with esbuild on the first request instead, and nothing is written to disk. When neither
 * works (a production install without console/ sources and without a build), /console answers 503
 * with a page that says to run `npm run build`.
 *
 * Every page is served with a Content-Security-Policy that allows scripts, styles and requests
 * from this origin only: no inline script or style, nothing from another origin, no framing.
 */
import { type Dirent, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { NeuronError } from '../foundation/errors/index.ts';

/** What the console's pages may load and where they may send requests: this origin only. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export type ConsoleFiles = Map<string, Buffer>;

export interface ConsoleRoutesOptions {
  /** The package's root (holds console/ and dist/console/); default: found from this file. */
  root?: string;
  /** Loads the files; default: dist/console, or an in-memory build (see the file comment). */
  load?: () => Promise<ConsoleFiles>;
}

/**
 * The package root: the nearest folder above this file with the Neuron's package.json (this file
 * is src/console/plugin.ts, or bundled somewhere under dist/).
 */
function packageRoot(): string {
  let dir = import.meta.dirname;
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'neuron') return dir;
    } catch {
      // no package.json here
    }
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(import.meta.dirname, '..', '..');
    dir = parent;
  }
}

/** The newest modification time of any file under `dir` (0 when it does not exist). */
function newestMtime(dir: string): number {
  let newest = 0;
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(file) : statSync(file).mtimeMs);
  }
  return newest;
}

/** Every file under `dir`, by path relative to it with forward slashes. */
function readTree(dir: string, prefix = ''): ConsoleFiles {
  const files: ConsoleFiles = new Map();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) for (const [inner, body] of readTree(path.join(dir, entry.name), name)) files.set(inner, body);
    else files.set(name, readFileSync(path.join(dir, entry.name)));
  }
  return files;
}

/** dist/console when it is built and current, else an in-memory build from console/. */
export async function loadConsoleFiles(root: string): Promise<ConsoleFiles> {
  const built = path.join(root, 'dist', 'console');
  let builtAt = 0;
  try {
    builtAt = statSync(path.join(built, 'index.html')).mtimeMs;
  } catch {
    // not built
  }
  const sourcesAt = newestMtime(path.join(root, 'console'));
  if (builtAt > 0 && builtAt >= sourcesAt) return readTree(built);
  if (sourcesAt === 0) throw new Error('dist/console/ is not built and the console sources (console/) are not installed');
  // Kept out of the server bundle: esbuild is loaded only here, for a developer without a build.
  const script = pathToFileURL(path.join(root, 'scripts', 'build-console.js')).href;
  const { buildConsoleFiles } = (await import(script)) as { buildConsoleFiles: (options?: { minify?: boolean }) => Promise<ConsoleFiles> };
  return buildConsoleFiles();
}

const NOT_BUILT_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Neuron console not built</title></head>
<body><h1>The Neuron console is not built</h1><p>Run <code>npm run build</code> in the Neuron's folder
(<code>npm ci</code> does it too), then reload this page. See docs/console.md.</p></body></html>\n`;

function send(reply: FastifyReply, name: string, body: Buffer): FastifyReply {
  const type = CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream';
  // index.html names the current hashed assets, so it is always revalidated; the assets' names
  // change with their content, so a browser may keep them.
  const cache = name === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable';
  return reply.header('content-security-policy', CONSOLE_CSP).header('cache-control', cache).type(type).send(body);
}

export function consoleRoutes(options: ConsoleRoutesOptions = {}): FastifyPluginAsync {
  const root = options.root ?? packageRoot();
  const load = options.load ?? (() => loadConsoleFiles(root));
  let files: Promise<ConsoleFiles> | undefined;
  const current = (): Promise<ConsoleFiles> => {
    files ??= load().catch((error: unknown) => {
      // Tried again on the next request: a build may have been run meanwhile.
      files = undefined;
      throw error;
    });
    return files;
  };

  return async (app) => {
    const route = { schema: { hide: true }, config: { auth: { kind: 'none' as const } } };
    const page = async (request: { log: { warn: (obj: object, msg: string) => void } }, reply: FastifyReply): Promise<FastifyReply> => {
      let loaded: ConsoleFiles;
      try {
        loaded = await current();
      } catch (error) {
        request.log.warn({ reason: (error as Error).message }, 'console unavailable');
        return reply
          .code(503)
          .header('content-security-policy', CONSOLE_CSP)
          .header('cache-control', 'no-store')
          .type(CONTENT_TYPES['.html'] ?? 'text/html')
          .send(NOT_BUILT_PAGE);
      }
      const index = loaded.get('index.html');
      if (index === undefined) throw new NeuronError('SERVER_ERROR');
      return send(reply, 'index.html', index);
    };
    app.get('/console', route, page);
    app.get('/console/', route, page);
    app.get<{ Params: { file: string } }>('/console/assets/:file', route, async (request, reply) => {
      const name = `assets/${request.params.file}`;
      const body = (await current().catch(() => new Map() as ConsoleFiles)).get(name);
      if (body === undefined) throw new NeuronError('ROUTE_NOT_FOUND', { message: 'no such console file' });
      return send(reply, name, body);
    });
    // The application's own pages (/console/patients, ...) are routed in the browser.
    app.get('/console/*', route, page);
  };
}
