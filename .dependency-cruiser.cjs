/**
 * Import boundaries of docs/architecture.md, checked by `npm run lint` (dependency-cruiser).
 *
 * Layers, lowest first: src/foundation/ → src/domains/ → src/network/ → the edges (src/http/,
 * src/cli/, src/console/, src/demo/, src/composition/, src/main.ts). Every import points down.
 * The protocol and the patient-side client live in packages/client/ (below everything in src/).
 * Test files (`*.test.ts`) may import anything; production code never imports a test helper.
 */
const NOT_A_TEST = '\\.test\\.ts$';
const ABOVE_FOUNDATION = '^src/(domains|network|http|cli|console|demo|composition|client)/|^src/main\\.ts$';
const ABOVE_DOMAINS = '^src/(network|http|cli|console|demo|composition|client)/|^src/main\\.ts$';
const ABOVE_NETWORK = '^src/(http|cli|console|demo|composition|client)/|^src/main\\.ts$';
// Node's modules that do I/O: the protocol package is pure (its one socket is the client's handshake).
const IO_MODULES = '^(node:)?(fs|fs/promises|net|http|https|http2|tls|dgram|dns|dns/promises|child_process|cluster|worker_threads|readline)$';
const PROTOCOL = '^packages/client/src/|^src/foundation/protocol/';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycle between files: each file can be read (and loaded) after the files it imports.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'foundation-imports-only-foundation',
      severity: 'error',
      comment: 'src/foundation/ is the base every layer stands on; it imports nothing above it.',
      from: { path: '^src/foundation/', pathNot: NOT_A_TEST },
      to: { path: ABOVE_FOUNDATION },
    },
    {
      name: 'domains-import-downward',
      severity: 'error',
      comment: 'A domain imports the foundation, packages/client and other domains (through their index.ts), never the network layer or an edge.',
      from: { path: '^src/domains/', pathNot: NOT_A_TEST },
      to: { path: ABOVE_DOMAINS },
    },
    {
      name: 'domains-meet-through-index',
      severity: 'error',
      comment: 'A domain reaches another domain only through its public face, index.ts (its service and routes), never its store or internals.',
      from: { path: '^src/domains/([^/]+)/', pathNot: NOT_A_TEST },
      to: { path: '^src/domains/[^/]+/', pathNot: ['^src/domains/$1/', '^src/domains/[^/]+/index\\.ts$'] },
    },
    {
      name: 'network-imports-downward',
      severity: 'error',
      comment: 'src/network/ (registry, discovery, cluster, presence) uses domains and the foundation, never an edge.',
      from: { path: '^src/network/', pathNot: NOT_A_TEST },
      to: { path: ABOVE_NETWORK },
    },
    {
      name: 'network-uses-domains-through-index',
      severity: 'error',
      comment: 'The network layer reaches a domain only through its index.ts.',
      from: { path: '^src/network/', pathNot: NOT_A_TEST },
      to: { path: '^src/domains/[^/]+/', pathNot: '^src/domains/[^/]+/index\\.ts$' },
    },
    {
      name: 'http-kit-imports-no-domain',
      severity: 'error',
      comment: 'src/http/ is the HTTP kit (fastify app, auth hook, rate limits, problem+json, OpenAPI); the composition root hands it services, so it imports no domain or network part.',
      from: { path: '^src/http/', pathNot: NOT_A_TEST },
      to: { path: '^src/(domains|network|cli|console|demo|composition)/|^src/main\\.ts$' },
    },
    {
      name: 'only-the-cli-imports-main',
      severity: 'error',
      comment: 'src/main.ts is the composition root; in production code only the CLI (which starts it) imports it, and only it and the CLI import src/composition/.',
      from: { path: '^src/', pathNot: ['^src/cli/', '^src/main\\.ts$', '^src/composition/', NOT_A_TEST] },
      to: { path: '^src/main\\.ts$|^src/composition/' },
    },
    {
      name: 'no-test-helpers-in-production',
      severity: 'error',
      comment: 'Test helpers live in test/ and are imported only by tests.',
      from: { path: '^(src|packages/[^/]+/src)/', pathNot: NOT_A_TEST },
      to: { path: '^test/|(^|/)test-support\\.ts$' },
    },
    {
      name: 'protocol-is-pure',
      severity: 'error',
      comment: 'The protocol package parses and checks messages, tokens, challenges and attestations; it does no I/O. Only the client handshake module opens a socket (ws).',
      from: { path: PROTOCOL, pathNot: ['(^|/)handshake\\.ts$', NOT_A_TEST] },
      to: { path: `${IO_MODULES}|(^|/)node_modules/ws/` },
    },
    {
      name: 'protocol-imports-nothing-of-the-server',
      severity: 'error',
      comment: 'packages/client stands alone: it imports nothing from src/.',
      from: { path: '^packages/client/', pathNot: NOT_A_TEST },
      to: { path: '^src/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
