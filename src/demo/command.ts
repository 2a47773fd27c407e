/**
 * `neuron demo` (also `npm run demo`): see ./run.ts. Needs no configuration and leaves nothing
 * behind.
 */
import type { Command } from 'commander';
import { colours, out } from '../cli/output.ts';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run a complete consent handshake against a temporary Neuron and show what it recorded (synthetic data, leaves nothing behind)',
    )
    .action(async () => {
      const paint = colours();
      // Loaded here, not with the command line: the demo and the patient client library it drives
      // have no place in a serving Neuron's memory.
      const { runDemo } = await import('./run.ts');
      await runDemo({ print: out, paint });
    });
}
