/** The domain events third parties may subscribe to (the webhooks API and the OpenAPI document list them). */
export const WEBHOOK_EVENT_TYPES = ['relationship.established', 'relationship.terminated', 'patient.blocked'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
