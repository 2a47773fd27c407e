/**
 * `GET /v1/stats/handshakes?days=14` (read scope): handshakes completed and failed per UTC day,
 * for the console's overview chart and any other client. Counted by the audit domain
 * (`auditEventsPerDay`) from its log, which has an entry for every completed (`handshake.completed`)
 * and failed (`handshake.failed`) handshake.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { apiKeyAuth } from '../../foundation/rest/context.ts';
import type { Db } from '../../foundation/storage/index.ts';
import { auditEventsPerDay } from '../audit/index.ts';

const DAY_MS = 86_400_000;
/** The console's chart shows two weeks. */
const DEFAULT_DAYS = 14;

export interface HandshakeDay {
  date: string;
  completed: number;
  failed: number;
}

/** Every UTC day from `days - 1` days ago to today, oldest first, zeros included. */
export async function handshakesPerDay(db: Db, days: number, now: number): Promise<HandshakeDay[]> {
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  const first = today - (days - 1) * DAY_MS;
  const rows = await auditEventsPerDay(db, ['handshake.completed', 'handshake.failed'], new Date(first).toISOString());
  const byDate = new Map<string, HandshakeDay>();
  for (let at = first; at <= today; at += DAY_MS) {
    const date = new Date(at).toISOString().slice(0, 10);
    byDate.set(date, { date, completed: 0, failed: 0 });
  }
  for (const row of rows) {
    const day = byDate.get(row.date);
    if (day === undefined) continue;
    if (row.eventType === 'handshake.completed') day.completed += row.count;
    else day.failed += row.count;
  }
  return [...byDate.values()];
}

export interface HandshakeStatsRouteOptions {
  /** The status service (./service.ts). */
  stats: { handshakesPerDay(days: number, now: number): Promise<HandshakeDay[]> };
  /** console.stats_max_days. */
  maxDays: number;
  now?: () => number;
}

export function handshakeStatsRoutes(options: HandshakeStatsRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    const { maxDays } = options;

    app.get(
      '/v1/stats/handshakes',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['status'],
          operationId: 'getHandshakeStats',
          summary: 'Handshakes per day',
          description: `Handshakes completed and failed on each UTC day of the last \`days\` days (today included), oldest first; days without handshakes have zeros. From the audit log of every instance.`,
          querystring: Type.Object(
            {
              days: Type.Integer({
                minimum: 1,
                maximum: maxDays,
                default: DEFAULT_DAYS,
                description: `how many days, today included (1-${maxDays}; console.stats_max_days)`,
              }),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object(
              {
                days: Type.Array(
                  Type.Object(
                    {
                      date: Type.String({ format: 'date', description: 'the UTC day, YYYY-MM-DD' }),
                      completed: Type.Integer({ minimum: 0 }),
                      failed: Type.Integer({ minimum: 0 }),
                    },
                    { additionalProperties: false },
                  ),
                ),
              },
              { additionalProperties: false },
            ),
          },
        },
      },
      async (request) => ({ days: await options.stats.handshakesPerDay(request.query.days, options.now?.() ?? Date.now()) }),
    );
  };
}
