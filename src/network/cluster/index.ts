export * from './lease.ts';
export * from './leader.ts';
