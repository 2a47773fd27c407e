export * from './database.ts';
export { describeStorageFailure, isStorageFailure } from './failures.ts';
export * from './locking.ts';
export * from './text.ts';
export type * from './tables.ts';
