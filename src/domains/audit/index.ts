export * from './chain.ts';
export * from './service.ts';
export * from './tree-head.ts';
export * from './tree.ts';
export * from './outside.ts';
export * from './verify.ts';
export * from './rotation.ts';
export * from './relationship-receipt.ts';
