export * from './database.ts';
export type * from './tables.ts';
