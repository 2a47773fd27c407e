/**
 * Exponential backoff with full jitter: the n-th retry (n from 0) waits a uniformly random time
 * between 0 and min(maxMs, initialMs * 2^n). Spreading retries over the whole range keeps many
 * Neurons from hammering a registry that just came back at the same instant. Pure.
 */

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

// 2^30 already exceeds any sensible ceiling; capping the exponent avoids Infinity arithmetic.
const MAX_EXPONENT = 30;

export function backoffCeiling(attempt: number, policy: BackoffPolicy): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT);
  return Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
}

export function fullJitterDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(attempt, policy);
  const fraction = Math.min(Math.max(random(), 0), 1);
  return Math.floor(fraction * ceiling);
}
