export { OutboundClient, OutboundRefusedError, outboundRefusal, OUTBOUND_REFUSED_CODE } from './client.ts';
export {
  ALWAYS_REFUSED,
  OutboundPolicy,
  classifyAddress,
  embeddedIpv4,
  embeddedIpv4Readings,
  outboundSettingsProblems,
  parseIpAddress,
  type AddressClass,
  type IpAddress,
  type OutboundSettings,
} from './policy.ts';
export { retryCeilingMs, retryDelayMs, type RetryPolicy } from './backoff.ts';
