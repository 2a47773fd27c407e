/** The webhooks domain's public face: other folders import it only from here. */
export { WebhookService } from './service.ts';
export { webhookRoutes } from './routes.ts';
export { webhookDeliveryTarget } from './store.ts';
export { publishWebhookEvent } from './events.ts';
export { WEBHOOK_EVENT_TYPES } from './event-types.ts';
