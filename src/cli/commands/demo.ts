/**
 * `neuron demo` (also `npm run demo`): see src/demo/run.ts. Needs no configuration and leaves
 * nothing behind. The command hands the demo the composition root's createNeuron, so the demo
 * (an edge like this one) never imports src/main.ts.
 */
import type { Command } from 'commander';
import { colours, out } from '../output.ts';

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
      const [{ runDemo }, { createNeuron }] = await Promise.all([import('../../demo/run.ts'), import('../../main.ts')]);
      await runDemo({ print: out, paint, createNeuron });
    });
}
