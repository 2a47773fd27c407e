export { enqueue, type NewOutboxNotice, type OutboxKind, type OutboxRow, type OutboxStatus } from './store.ts';
export { publishWebhookEvent, WEBHOOK_EVENT_TYPES, type WebhookEventType } from './events.ts';
export { OutboxWorker, type OutboxWorkerOptions } from './worker.ts';
export {
  awaitingPull,
  deliveryResolvers,
  providerNoticeResolver,
  webhookResolver,
  type DeliveryPlan,
  type TargetResolver,
  type ResolverMap,
} from './resolvers.ts';
export { HEADER, providerNoticeSignatureHeaders, verifyProviderNotice, webhookSignature, verifyWebhookSignature } from './signing.ts';
export { outboxRoutes } from './routes.ts';
export {
  listNotices,
  requeueNotice,
  toOutboxView,
  OutboxService,
  type OutboxBacklog,
  type OutboxView,
} from './service.ts';
