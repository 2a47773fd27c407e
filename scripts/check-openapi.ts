/**
 * CI's check of the OpenAPI document (`npm run check:openapi`, called from .ci/run):
 *   1. start a real Neuron (temporary directory, 127.0.0.1, port 0) and save its /openapi.json;
 *   2. lint it with Spectral (spectral:oas) and Redocly (recommended): no error, no warning;
 *   3. generate TypeScript types from it with openapi-typescript and compile
 *      scripts/openapi/typed-client.ts (openapi-fetch with the named types) under `tsc --strict`.
 * Everything runs offline: both rulesets are built in, and Redocly's telemetry is off.
 */
import { copyFileSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/foundation/config/index.ts';
import { createNeuron } from '../src/main.ts';
import { runProcess } from '../test/helpers/run-process.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name: string): string => path.join(repoRoot, 'node_modules/.bin', name);
const work = mkdtempSync(path.join(tmpdir(), 'neuron-openapi-'));

async function saveDocument(file: string): Promise<void> {
  const configFile = path.join(work, 'neuron.config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      organization: { name: 'OpenAPI Check Practice', npi: '1245319599' },
      data_dir: './data',
      server: { host: '127.0.0.1', port: 0 },
      discovery: { enabled: false },
      registry: { enabled: false },
      logging: { level: 'error', pretty: 'never' },
    }),
  );
  const neuron = createNeuron(loadConfig({ configFile, env: {} }), { defaultMetrics: false });
  await neuron.start();
  try {
    const response = await fetch(`${neuron.address().url}/openapi.json`);
    if (response.status !== 200) throw new Error(`/openapi.json answered ${response.status}`);
    writeFileSync(file, await response.text());
  } finally {
    await neuron.stop();
  }
}

async function run(step: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await runProcess(command, args, { cwd: repoRoot, env: { ...process.env, ...env } });
  if (result.code !== 0) {
    throw new Error(`${step} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  console.log(`ok: ${step}`);
  return result.stdout;
}

async function main(): Promise<void> {
  const document = path.join(work, 'openapi.json');
  await saveDocument(document);
  console.log(`ok: the document (${statSync(document).size} bytes) from a started Neuron`);

  await run('Spectral, spectral:oas', bin('spectral'), [
    'lint',
    '--ruleset',
    path.join(repoRoot, 'scripts/openapi/spectral.yaml'),
    '--fail-severity',
    'warn',
    document,
  ]);

  const redocly = await run(
    'Redocly, recommended (errors)',
    bin('redocly'),
    ['lint', '--config', path.join(repoRoot, 'scripts/openapi/redocly.yaml'), '--format', 'json', document],
    {
      REDOCLY_TELEMETRY: 'off',
      REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
    },
  );
  const totals = (JSON.parse(redocly) as { totals: { errors: number; warnings: number } }).totals;
  if (totals.errors !== 0 || totals.warnings !== 0)
    throw new Error(`Redocly: ${totals.errors} errors, ${totals.warnings} warnings:\n${redocly}`);
  console.log('ok: Redocly, recommended (no warnings)');

  const client = path.join(work, 'client');
  await run('openapi-typescript', bin('openapi-typescript'), [document, '--output', path.join(client, 'openapi.d.ts')]);
  copyFileSync(path.join(repoRoot, 'scripts/openapi/typed-client.ts'), path.join(client, 'typed-client.ts'));
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(client, 'node_modules'), 'dir');
  writeFileSync(path.join(client, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  writeFileSync(
    path.join(client, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'DOM'],
        types: [],
        strict: true,
        noUncheckedIndexedAccess: true,
        allowImportingTsExtensions: true,
        noEmit: true,
        skipLibCheck: false,
      },
      files: ['typed-client.ts'],
    }),
  );
  await run('the typed client compiles under tsc --strict', bin('tsc'), ['-p', path.join(client, 'tsconfig.json')]);
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
