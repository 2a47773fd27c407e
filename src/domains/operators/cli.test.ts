/**
 * `neuron operator …` as an administrator runs it: a real process on the config of a running
 * test Neuron, its exit codes and output, and each change taking effect on sign-in and on live
 * sessions at once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import type { ProcessResult } from '../../../test/helpers/run-process.ts';
import { runNeuronCli } from '../../../test/helpers/cli.ts';

/** Cheap scrypt so the suite spends its time on behaviour, not hashing (never a production value). */
const TEST_SCRYPT = { n: 1024, r: 8, p: 1, keylen: 32 };
const PASSWORD = 'a long enough synthetic passphrase';

describe('neuron operator (CLI)', () => {
  let t: TestNeuron;

  const neuron = (args: string[], input?: string): Promise<ProcessResult> => runNeuronCli(t.configFile, ['operator', ...args], { input });
  const signIn = (name: string, password: string): Promise<Response> =>
    fetch(`${t.url}/v1/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, password }),
    });
  const cookieOf = (response: Response): string => response.headers.getSetCookie()[0]!.split(';')[0]!;
  const audited = async (type: string): Promise<string[]> =>
    (
      await t.neuron.storage.db.selectFrom('audit_log').select(['actor', 'details']).where('event_type', '=', type).orderBy('seq').execute()
    ).map((row) => `${row.actor} ${String((JSON.parse(row.details) as { name: string }).name)}`);

  before(async () => {
    t = await startTestNeuron({ config: { console: { scrypt: TEST_SCRYPT } } });
  });
  after(() => t.stop());

  it('adds an operator with --password-stdin, lists it, and the operator signs in', async () => {
    const added = await neuron(['add', 'reception', '--role', 'front-desk', '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added operator reception \(front-desk\)/);
    assert.ok(!added.stdout.includes(PASSWORD));
    const listed = await neuron(['list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const operators = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      operators.map((o) => [o['name'], o['role'], o['locked_until']]),
      [['reception', 'front-desk', null]],
    );
    assert.ok(!listed.stdout.includes('scrypt'), 'no hash in the listing');
    assert.equal((await signIn('reception', PASSWORD)).status, 200);
    assert.deepEqual(await audited('operator.added'), ['cli reception']);
    const stored = await t.neuron.storage.db
      .selectFrom('operators')
      .select('password_hash')
      .where('name', '=', 'reception')
      .executeTakeFirstOrThrow();
    assert.match(
      stored.password_hash,
      /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/,
      'scrypt with the configured parameters and a salt',
    );
  });

  it('generates and prints a password once when none is given and standard input is not a terminal', async () => {
    const added = await neuron(['add', 'boss', '--role', 'admin', '--json']);
    assert.equal(added.code, 0, added.stderr);
    const { password, role } = JSON.parse(added.stdout) as { password: string; role: string };
    assert.equal(role, 'admin');
    assert.match(password, /^[A-Za-z0-9_-]{24,}$/);
    const response = await signIn('boss', password);
    assert.equal(response.status, 200);
    assert.deepEqual(((await response.json()) as { operator: unknown }).operator, { name: 'boss', role: 'admin' });
  });

  it('refuses bad input with exit 2 and an existing name with exit 1, writing nothing', async () => {
    for (const args of [
      ['add', 'x', '--role', 'owner', '--password-stdin'],
      ['add', 'bad name', '--role', 'admin', '--password-stdin'],
      ['add', 'short', '--role', 'admin', '--password-stdin'],
    ]) {
      const run = await neuron(args, 'too short\n');
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout} ${run.stderr}`);
    }
    const twice = await neuron(['add', 'reception', '--role', 'admin', '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(twice.code, 1, twice.stderr);
    assert.match(twice.stderr, /already exists/);
    const names = (JSON.parse((await neuron(['list', '--json'])).stdout) as Array<{ name: string; role: string }>).map(
      (o) => `${o.name}:${o.role}`,
    );
    assert.deepEqual(names, ['boss:admin', 'reception:front-desk']);
    assert.equal((await neuron(['remove', 'nobody'])).code, 1);
    assert.equal((await neuron(['reset-password', 'nobody', '--password-stdin'], `${PASSWORD}\n`)).code, 1);
  });

  it("reset-password ends the operator's sessions at once and the new password works", async () => {
    const cookie = cookieOf(await signIn('reception', PASSWORD));
    assert.equal((await fetch(`${t.url}/v1/console/session`, { headers: { cookie } })).status, 200);
    const reset = await neuron(['reset-password', 'reception', '--password-stdin'], `${PASSWORD} renewed\n`);
    assert.equal(reset.code, 0, reset.stderr);
    const old = await fetch(`${t.url}/v1/console/session`, { headers: { cookie } });
    assert.equal(old.status, 401);
    assert.equal(((await old.json()) as { code: string }).code, 'SESSION_EXPIRED');
    assert.equal((await signIn('reception', PASSWORD)).status, 401);
    assert.equal((await signIn('reception', `${PASSWORD} renewed`)).status, 200);
    assert.deepEqual(await audited('operator.password_reset'), ['cli reception']);
  });

  it('remove deletes the operator and ends their sessions', async () => {
    const cookie = cookieOf(await signIn('reception', `${PASSWORD} renewed`));
    const removed = await neuron(['remove', 'reception']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await fetch(`${t.url}/v1/relationships`, { headers: { cookie } })).status, 401);
    assert.equal((await signIn('reception', `${PASSWORD} renewed`)).status, 401);
    const names = (JSON.parse((await neuron(['list', '--json'])).stdout) as Array<{ name: string }>).map((o) => o.name);
    assert.deepEqual(names, ['boss']);
    assert.deepEqual(await audited('operator.removed'), ['cli reception']);
  });
});
