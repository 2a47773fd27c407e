/**
 * docs/api.md works as written: every ```sh block runs, in order, against a real Neuron, with the
 * `neuron` command on PATH; the keys it creates are the ones the later blocks use; the webhook it
 * subscribes is received by a real HTTP server and verified with the guide's own ```js code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../test/helpers/api.ts';
import { runProcess, type ProcessResult } from '../../test/helpers/run-process.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const GUIDE = path.join(repoRoot, 'docs/api.md');
/** The receiver URL the guide uses; replaced by a local server's. */
const GUIDE_WEBHOOK_URL = 'https://booking.example.com/hooks/neuron';
const KEY_PATTERN = /nrn_[0-9a-z]{12}_[0-9A-Za-z]{38}/;

function blocks(markdown: string, language: string): string[] {
  const found: string[] = [];
  const fence = new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\``, 'gm');
  for (const match of markdown.matchAll(fence)) found.push(match[1]!);
  return found;
}

function runShell(script: string, env: NodeJS.ProcessEnv): Promise<ProcessResult> {
  // Every curl fails the block on a non-2xx answer, so an example that stops working fails here.
  const prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n';
  return runProcess('bash', ['-c', prelude + script], { env });
}

describe('docs/api.md', () => {
  let t: ApiTestNeuron;
  let receiver: Server;
  let receiverUrl: string;
  const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  let binDir: string;

  before(async () => {
    t = await startApiNeuron({ config: { outbox: { poll_interval_ms: 50 } } });
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks/neuron`;
    binDir = mkdtempSync(path.join(tmpdir(), 'neuron-bin-'));
    const shim = path.join(binDir, 'neuron');
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${path.join(repoRoot, 'bin/neuron.js')}" "$@"\n`);
    chmodSync(shim, 0o755);
  });
  after(async () => {
    await new Promise<void>((resolve) => {
      receiver.close(() => resolve());
      receiver.closeAllConnections();
    });
    rmSync(binDir, { recursive: true, force: true });
    await t.stop();
  });

  it('runs every shell example in order, from creating a key to receiving a verified webhook', async () => {
    const guide = readFileSync(GUIDE, 'utf8');
    const shell = blocks(guide, 'sh');
    assert.ok(shell.length >= 10, `${shell.length} shell examples`);
    assert.ok(guide.includes(GUIDE_WEBHOOK_URL));

    const relationship = await insertRelationship(t.neuron, {
      providerNpi: '1679576722',
      profile: { display_name: 'Ada Lovelace', date_of_birth: '1815-12-10' },
    });
    const env: NodeJS.ProcessEnv = {
      PATH: `${binDir}:${process.env['PATH'] ?? ''}`,
      HOME: process.env['HOME'],
      NO_COLOR: '1',
      NEURON_CONFIG: t.configFile,
      BASE_URL: t.url,
      RELATIONSHIP_ID: relationship.id,
      PATIENT_AGENT_ID: relationship.patientAgentId,
    };
    let secret: string | undefined;
    for (const block of shell) {
      const script = block.replaceAll(GUIDE_WEBHOOK_URL, receiverUrl);
      const result = await runShell(script, env);
      assert.equal(result.code, 0, `this example failed:\n${block}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
      if (block.includes('neuron api-key create')) {
        const key = KEY_PATTERN.exec(result.stdout)?.[0];
        assert.ok(key, `the key is printed:\n${result.stdout}`);
        env[block.includes('--scopes admin') ? 'ADMIN_API_KEY' : 'API_KEY'] = key;
      }
      if (block.includes('/v1/webhooks')) {
        secret = (JSON.parse(result.stdout) as { secret: string }).secret;
        assert.match(secret, /^whsec_/);
      }
      if (block.includes('/v1/organization'))
        assert.equal((JSON.parse(result.stdout) as { npi: string }).npi, t.neuron.config.organization.npi);
      if (block.includes('jq -r')) assert.match(result.stdout, new RegExp(relationship.id));
      if (block.includes('/profile'))
        assert.equal((JSON.parse(result.stdout) as { profile: Record<string, string> }).profile['preferred_language'], 'en-GB');
    }
    assert.ok(env['API_KEY'] && env['ADMIN_API_KEY'] && secret);

    const terminated = await t.request('GET', `/v1/relationships/${relationship.id}`, { key: env['API_KEY'] });
    assert.equal(terminated.body.status, 'terminated');
    const audit = await t.request('GET', '/v1/audit/events?event_type=relationship.terminated', { key: env['API_KEY'] });
    assert.ok(audit.body.items.some((e: { actor: string }) => e.actor === 'api-key:booking-app'));

    const deadline = Date.now() + 15_000;
    while (!received.some((r) => r.headers['neuron-event-type'] === 'relationship.terminated') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const delivery = received.find((r) => r.headers['neuron-event-type'] === 'relationship.terminated');
    assert.ok(delivery, 'the webhook arrived');

    // The guide's own verification code accepts the delivery and refuses a tampered one.
    const [verifier] = blocks(guide, 'js');
    assert.ok(verifier);
    const module = path.join(binDir, 'verify.mjs');
    writeFileSync(module, `${verifier}\nexport { verifyNeuronSignature };\n`);
    const { verifyNeuronSignature } = (await import(pathToFileURL(module).href)) as {
      verifyNeuronSignature: (body: string, header: unknown, secret: string) => boolean;
    };
    const header = delivery.headers['neuron-signature'];
    assert.equal(verifyNeuronSignature(delivery.body, header, secret), true);
    assert.equal(verifyNeuronSignature(delivery.body.replace('patient moved away', 'patient moved here'), header, secret), false);
    assert.equal(verifyNeuronSignature(delivery.body, header, 'whsec_not-the-secret'), false);
    assert.equal(verifyNeuronSignature(delivery.body, undefined, secret), false);
    const event = JSON.parse(delivery.body) as { type: string; data: { relationship_id: string; reason: string } };
    assert.deepEqual(
      [event.type, event.data.relationship_id, event.data.reason],
      ['relationship.terminated', relationship.id, 'patient moved away'],
    );
  });
});
