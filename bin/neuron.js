#!/usr/bin/env node
// The `neuron` command. TypeScript sources run through tsx's loader, so there is no build step.
import v8 from 'node:v8';

// tsx compiles TypeScript in a loader thread of its own, which lives as long as the process. Its
// heap is configured when the thread starts (next line but one): a young generation of at most
// 2 MB per semi-space instead of V8's 16 MB keeps ~20 MB of idle RSS off the Neuron; the thread
// only transforms source files, at start-up. The main thread's heap is already configured at this
// point; `node --max-semi-space-size=2 bin/neuron.js` applies the same to it (docs/benchmarks.md).
v8.setFlagsFromString('--max-semi-space-size=2');
const { register } = await import('tsx/esm/api');

register();
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv);
