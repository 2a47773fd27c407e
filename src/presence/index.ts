export * from './presence.ts';
export * from './status.ts';
