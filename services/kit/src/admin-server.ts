import { createServer, type Server } from 'node:http';
import type { Registry } from './metrics/metrics.js';

export interface AdminServerOptions {
  /** Readiness: every dependency the service needs to answer requests is usable. */
  isReady(): boolean | Promise<boolean>;
  /** Served on `/metrics` in the Prometheus text format; without it `/metrics` is 404. */
  metrics?: Registry;
}

export interface AdminServer {
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * Plain HTTP endpoint for orchestrators: `/healthz` (alive), `/readyz` (ready for traffic) and
 * `/metrics` (Prometheus scrape).
 */
export function createAdminServer({ isReady, metrics }: AdminServerOptions): AdminServer {
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.url === '/healthz') {
      send(200, { status: 'ok' });
      return;
    }
    if (req.url === '/readyz') {
      void Promise.resolve()
        .then(isReady)
        .then(
          (ready) => send(ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready' }),
          () => send(503, { status: 'not_ready' }),
        );
      return;
    }
    if (req.url === '/metrics' && metrics) {
      void metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        () => send(500, { error: { code: 'INTERNAL', message: 'metrics are unavailable' } }),
      );
      return;
    }
    send(404, { error: { code: 'NOT_FOUND', message: 'Not found' } });
  });
  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
