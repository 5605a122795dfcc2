import { createServer, type Server } from 'node:http';

export interface AdminServerOptions {
  /** Readiness: every dependency the service needs to answer requests is usable. */
  isReady(): boolean | Promise<boolean>;
}

export interface AdminServer {
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

/** Plain HTTP endpoint for orchestrators: `/healthz` (alive) and `/readyz` (ready for traffic). */
export function createAdminServer({ isReady }: AdminServerOptions): AdminServer {
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
