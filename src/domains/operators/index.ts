export * from './schemas.ts';
export * from './service.ts';
export { operatorRoutes } from './routes.ts';
export { operatorPrincipal } from './session-auth.ts';
