export * from './catalogue.ts';
export * from './neuron-error.ts';
export * from './problem.ts';
export * from './protocol-errors.ts';
