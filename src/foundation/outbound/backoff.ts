/**
 * When to try a failed outbound request again: exponential backoff with full jitter, the one
 * algorithm for every retry the Neuron makes (notices and webhooks in outbox/, registration,
 * heartbeats and provider changes in registry/). After the n-th failed attempt (n from 1) the
 * next one waits a uniformly random time in [0, min(maxMs, initialMs * 2^(n-1))]. Spreading the
 * retries over the whole window keeps many senders from hitting a peer that just came back at the
 * same instant. Pure.
 */

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
}

// 2^40 ms is centuries; capping the exponent keeps the arithmetic finite for any attempt count.
const MAX_EXPONENT = 40;

export function retryCeilingMs(failedAttempts: number, policy: RetryPolicy): number {
  const exponent = Math.min(Math.max(0, Math.floor(failedAttempts) - 1), MAX_EXPONENT);
  return Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
}

export function retryDelayMs(failedAttempts: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const fraction = Math.min(Math.max(random(), 0), 1);
  return Math.floor(fraction * retryCeilingMs(failedAttempts, policy));
}
