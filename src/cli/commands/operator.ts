/**
 * `neuron operator add|list|remove|reset-password`: the console's operators, through the same
 * service the server uses (./service.ts). Works whether or not the Neuron is running; a removal
 * or a new password ends the operator's sessions at once, on every instance, since sessions live
 * in the database. Registered by src/cli/main.ts.
 *
 * The password comes from `--password-stdin` (the first line of standard input), else a prompt
 * without echo when standard input is a terminal, else it is generated and printed once.
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { cliAudit, globalOptions, loadForCli, openForCli } from '../context.ts';
import { CliError, EXIT, colours, out, printJson } from '../output.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import {
  OPERATOR_NAME_PATTERN,
  OPERATOR_ROLES,
  OperatorService,
  type OperatorRole,
  type OperatorView,
} from '../../domains/operators/index.ts';

async function withService<T>(command: Command, work: (service: OperatorService) => Promise<T>): Promise<T> {
  const loaded = loadForCli(globalOptions(command));
  // Migrates: the first operator is often added before the Neuron has run this version.
  const storage = await openForCli(loaded, { mustExist: false, migrate: true });
  try {
    const { key } = await ensureOrganizationKey(storage.db);
    // cliAudit: entries written here are sealed into the tree-head file too, like the server's.
    const audit = cliAudit(storage, key);
    return await work(new OperatorService({ storage, audit, settings: loaded.config.console }));
  } catch (error) {
    if (error instanceof NeuronError) throw new CliError(error.message, error.code === 'VALIDATION_FAILED' ? EXIT.USAGE : EXIT.FAILURE);
    throw error;
  } finally {
    await storage.close();
  }
}

function checkName(name: string): void {
  if (!new RegExp(OPERATOR_NAME_PATTERN).test(name)) {
    throw new CliError('NAME takes 1 to 64 letters, digits and . _ @ -, starting with a letter or digit', EXIT.USAGE);
  }
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (line === '') throw new CliError('--password-stdin: standard input held no password', EXIT.USAGE);
  return line;
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    let muted = false;
    const write = rl as unknown as { _writeToOutput: (text: string) => void };
    write._writeToOutput = (text: string) => {
      if (!muted || text.includes('\n')) process.stdout.write(muted ? '\n' : text);
    };
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    });
    muted = true;
  });
}

/** The password and whether it was generated (and so must be printed). */
async function passwordFor(service: OperatorService, fromStdin: boolean | undefined): Promise<{ password: string; generated: boolean }> {
  if (fromStdin) return { password: await readStdinLine(), generated: false };
  if (process.stdin.isTTY) {
    const first = await promptHidden('Password: ');
    const second = await promptHidden('Again: ');
    if (first !== second) throw new CliError('the two passwords differ; nothing was changed', EXIT.USAGE);
    return { password: first, generated: false };
  }
  return { password: service.generatePassword(), generated: true };
}

function printGenerated(password: string): void {
  const paint = colours();
  out('');
  out(`  ${password}`);
  out('');
  out(paint('yellow', 'Give it to the operator now: this is the only time it is shown.'));
}

function printOperator(view: OperatorView): void {
  const paint = colours();
  const locked = view.locked_until === null ? '' : `  ${paint('yellow', `locked until ${view.locked_until}`)}`;
  out(`${view.name}  ${view.role}  created ${view.created_at}  updated ${view.updated_at}${locked}`);
}

export function registerOperator(program: Command): void {
  const operator = program.command('operator').description('people who sign in to the console (/console)');

  operator
    .command('add <name>')
    .description(
      'create an operator; the password is read from --password-stdin, prompted for on a terminal, or generated and printed once',
    )
    .requiredOption('--role <role>', OPERATOR_ROLES.join(' or '))
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option('--json', 'machine-readable output')
    .action(async (name: string, options: { role: string; passwordStdin?: boolean; json?: boolean }, command: Command) => {
      checkName(name);
      if (!(OPERATOR_ROLES as readonly string[]).includes(options.role))
        throw new CliError(`--role takes ${OPERATOR_ROLES.join(' or ')}`, EXIT.USAGE);
      const { view, password, generated } = await withService(command, async (service) => {
        const chosen = await passwordFor(service, options.passwordStdin);
        const added = await service.add({ name, role: options.role as OperatorRole, password: chosen.password, actor: 'cli' });
        return { view: added, ...chosen };
      });
      if (options.json) return printJson(generated ? { ...view, password } : view);
      out(`${colours()('green', 'added')} operator ${view.name} (${view.role})`);
      if (generated) printGenerated(password);
    });

  operator
    .command('list')
    .description('every operator with role and any lockout in force (never a password)')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }, command: Command) => {
      const views = await withService(command, (service) => service.list());
      if (options.json) return printJson(views);
      if (views.length === 0) out('no operators; create one with `neuron operator add NAME --role admin`');
      for (const view of views) printOperator(view);
    });

  operator
    .command('remove <name>')
    .description('delete an operator; their sessions end at once')
    .action(async (name: string, _options: unknown, command: Command) => {
      checkName(name);
      await withService(command, (service) => service.remove(name, 'cli'));
      out(`${colours()('green', 'removed')} operator ${name}; their sessions have ended`);
    });

  operator
    .command('reset-password <name>')
    .description('set a new password (same sources as add); ends their sessions and lifts a lockout')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option('--json', 'machine-readable output')
    .action(async (name: string, options: { passwordStdin?: boolean; json?: boolean }, command: Command) => {
      checkName(name);
      const { password, generated } = await withService(command, async (service) => {
        const chosen = await passwordFor(service, options.passwordStdin);
        await service.resetPassword(name, chosen.password, 'cli');
        return chosen;
      });
      if (options.json) return printJson(generated ? { name, password } : { name });
      out(`${colours()('green', 'password reset')} for operator ${name}; their sessions have ended`);
      if (generated) printGenerated(password);
    });
}
