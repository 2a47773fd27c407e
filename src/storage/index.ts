export * from './database.ts';
export * from './locking.ts';
export * from './text.ts';
export type * from './tables.ts';
