import { createServer } from 'node:http';
import type { Logger } from '@portcullis/kit';
import type { SigningKeys } from '../libraries/signing-keys.js';

export const JWKS_PATH = '/.well-known/jwks.json';

export interface JwksServerDeps {
  keys: Pick<SigningKeys, 'publicJwks'>;
  logger: Logger;
}

export interface JwksServer {
  /** Returns the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

/** Plain HTTP server publishing the public signing keys at /.well-known/jwks.json. */
export function createJwksServer({ keys, logger }: JwksServerDeps): JwksServer {
  const server = createServer((req, res) => {
    const send = (status: number, body: object, headers: Record<string, string> = {}) => {
      const json = JSON.stringify(body);
      res
        .writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(json),
          'x-content-type-options': 'nosniff',
          ...headers,
        })
        .end(req.method === 'HEAD' ? undefined : json);
    };
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== JWKS_PATH) {
      send(404, { error: { code: 'NOT_FOUND', message: 'Not found' } });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, { error: { code: 'INVALID_ARGUMENT', message: 'Method not allowed' } }, { allow: 'GET, HEAD' });
      return;
    }
    keys.publicJwks().then(
      (jwks) => {
        send(200, jwks, { 'cache-control': 'public, max-age=60' });
      },
      (error: unknown) => {
        logger.error({ err: error }, 'cannot load signing keys for JWKS');
        send(503, { error: { code: 'DEPENDENCY_UNAVAILABLE', message: 'Signing keys unavailable' } }, { 'cache-control': 'no-store' });
      },
    );
  });

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    },
  };
}
