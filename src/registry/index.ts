export * from './backoff.ts';
export * from './client.ts';
export * from './schemas.ts';
export * from './service.ts';
export * from './state.ts';
export * from './store.ts';
