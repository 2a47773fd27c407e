export type { ServedAgentCard } from './agent-card.ts';
export * from './presence.ts';
export * from './status.ts';
export * from './routes.ts';
