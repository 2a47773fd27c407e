export { enqueue, type OutboxRow, type OutboxStatus } from './store.ts';
export { OutboxWorker } from './worker.ts';
export {
  awaitingPull,
  deliveryResolvers,
} from './resolvers.ts';
export { outboxRoutes } from './routes.ts';
export {
  listNotices,
  requeueNotice,
  toOutboxView,
  OutboxService,
  type OutboxBacklog,
  type OutboxView,
} from './service.ts';
