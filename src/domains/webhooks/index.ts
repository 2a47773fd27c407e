/** The webhooks domain's public face: other folders import it only from here. */
export { WebhookService, type WebhookServiceOptions } from './service.ts';
export { webhookRoutes, WebhookSchema } from './routes.ts';
export { webhookDeliveryTarget } from './store.ts';
