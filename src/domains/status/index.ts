/** The status domain's public face: other folders import it only from here. */
export { StatusService, handshakesFromMetrics, type RegistrySummary, type StatusSources } from './service.ts';
export { statusRoutes, StatusSchema } from './routes.ts';
export { organizationRoutes, OrganizationSchema } from './organization-route.ts';
export { handshakeStatsRoutes } from './handshake-stats.ts';
export { startMetricsListener } from './metrics-listener.ts';
