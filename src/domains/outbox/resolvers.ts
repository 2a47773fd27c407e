/**
 * Where each kind of outbox row goes and how it is signed. The worker is generic; a resolver
 * turns one row into a plan: post it (URL and signature headers), hold it (not an attempt; look
 * again later), or give up (dead letter).
 *
 *   provider.relationship  target = provider NPI; posted to the provider's notification_url,
 *                          signed with the organization's Ed25519 key. A provider without a
 *                          notification_url pulls its notices instead (GET
 *                          /v1/providers/:npi/relationships), so the row is held until the
 *                          provider reads past it or a notification_url is set.
 *   webhook                target = webhook subscription id; posted to the subscription URL,
 *                          signed with HMAC-SHA256 of the subscription's secret.
 */
import type { OrganizationKey } from '../../foundation/organization/keys.ts';
import type { Db } from '../../foundation/storage/index.ts';
import { isoNow } from '../../foundation/storage/index.ts';
import { providerNoticeSignatureHeaders, webhookSignature, HEADER } from './signing.ts';
import type { OutboxKind, OutboxRow } from './store.ts';

export type DeliveryPlan =
  | { action: 'post'; url: string; headers: Record<string, string> }
  /** Not deliverable yet and not the target's fault: look again at `until`, without using an attempt. */
  | { action: 'hold'; until: string; reason: string }
  /** Can never be delivered: becomes a dead letter at once. */
  | { action: 'dead'; reason: string };

export interface ResolveContext {
  db: Db;
  now: number;
  /** How long a held row waits before it is looked at again. */
  holdMs: number;
}

export type TargetResolver = (row: OutboxRow, context: ResolveContext) => Promise<DeliveryPlan>;

export type ResolverMap = Partial<Record<OutboxKind, TargetResolver>>;

/** Reasons stored in `last_error` for held rows; documented in docs/providers.md. */
export const HOLD_REASON = {
  awaitingPull: 'no notification_url: waiting for the provider to pull it',
  providerNotActive: 'provider is not active: held until it is approved again',
} as const;

/**
 * The state of a notice whose provider pulls (no notification_url): pending, looked at again after
 * `holdMs` (outbox.backoff_max_ms), with the reason in `last_error`. The worker leaves such a row
 * so; a completing handshake writes its notice so from the start (src/domains/handshake/service.ts).
 */
export function awaitingPull(now: number, holdMs: number): { dueAt: string; note: string } {
  return { dueAt: isoNow(now + holdMs), note: HOLD_REASON.awaitingPull };
}

export function providerNoticeResolver(key: () => OrganizationKey): TargetResolver {
  return async (row, context) => {
    const provider = await context.db
      .selectFrom('providers')
      .select(['status', 'notification_url'])
      .where('npi', '=', row.target)
      .executeTakeFirst();
    if (!provider) return { action: 'dead', reason: 'the provider was removed from the roster' };
    const until = isoNow(context.now + context.holdMs);
    if (provider.status !== 'active') return { action: 'hold', until, reason: HOLD_REASON.providerNotActive };
    if (provider.notification_url === null) {
      const held = awaitingPull(context.now, context.holdMs);
      return { action: 'hold', until: held.dueAt, reason: held.note };
    }
    return { action: 'post', url: provider.notification_url, headers: providerNoticeSignatureHeaders(key(), row.body) };
  };
}

export function webhookResolver(): TargetResolver {
  return async (row, context) => {
    const subscription = await context.db
      .selectFrom('webhook_subscriptions')
      .select(['url', 'secret', 'active'])
      .where('id', '=', row.target)
      .executeTakeFirst();
    if (subscription?.active !== 1) return { action: 'dead', reason: 'the webhook subscription was removed or disabled' };
    return { action: 'post', url: subscription.url, headers: { [HEADER.signature]: webhookSignature(subscription.secret, row.body) } };
  };
}

export function defaultResolvers(key: () => OrganizationKey): ResolverMap {
  return { 'provider.relationship': providerNoticeResolver(key), webhook: webhookResolver() };
}
