export * from './chain.ts';
export * from './service.ts';
