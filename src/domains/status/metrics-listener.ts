/**
 * An optional second listener for Prometheus on 127.0.0.1 at api.metrics_port, without
 * authentication: only processes on this machine reach it (a local scraper or agent). It answers
 * GET /metrics and nothing else.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export const METRICS_HOST = '127.0.0.1';

export async function startMetricsListener(
  metrics: Registry,
  port: number,
): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if ((request.method !== 'GET' && request.method !== 'HEAD') || path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found; GET /metrics\n');
      return;
    }
    metrics.metrics().then(
      (body) => response.writeHead(200, { 'content-type': metrics.contentType }).end(request.method === 'HEAD' ? undefined : body),
      () => response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, METRICS_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = address && typeof address === 'object' ? address.port : port;
  return {
    server,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
