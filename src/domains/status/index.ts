/** The status domain's public face: other folders import it only from here. */
export {
  StatusService,
  handshakesFromMetrics,
  placeholderRegistry,
  type HandshakeLoad,
  type RegistrySummary,
  type StatusReport,
  type StatusServiceOptions,
  type StatusSources,
} from './service.ts';
export { statusRoutes, StatusSchema } from './routes.ts';
export { organizationRoutes, OrganizationSchema, type OrganizationSources } from './organization-route.ts';
export { handshakeStatsRoutes, type HandshakeDay } from './handshake-stats.ts';
export { startMetricsListener } from './metrics-listener.ts';
