export { OutboundClient, outboundRefusal, OUTBOUND_REFUSED_CODE } from './client.ts';
export { OutboundPolicy } from './policy.ts';
export { retryDelayMs, type RetryPolicy } from './backoff.ts';
