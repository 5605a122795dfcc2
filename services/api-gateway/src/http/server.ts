import { readFile } from 'node:fs/promises';
import { createServer as createPlainServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import { AppError } from '@portcullis/kit';

/** The PEM files of the gateway's TLS certificate. */
export interface TlsFiles {
  /** The server certificate (PEM); may already carry its intermediates after the leaf. */
  certFile: string;
  /** The certificate's private key (PEM, unencrypted). */
  keyFile: string;
  /**
   * Optional intermediate CA certificates (PEM), sent after the leaf so that clients which trust
   * only the root can build the chain. Not a trust store: the gateway does not ask for client
   * certificates.
   */
  caFile?: string | undefined;
}

export interface HttpServerOptions {
  handler: RequestListener;
  host: string;
  /** 0 picks a free port; read it back from `server.address()`. */
  port: number;
  /** With it the server speaks HTTPS only (TLS 1.3 and nothing older); without it, plain HTTP. */
  tls?: TlsFiles | undefined;
}

// The gateway may face clients directly, so slow or idle connections must not hold sockets for
// long (slowloris). Node's defaults are generous (60 s for headers, 300 s per request, 120 s for
// a TLS handshake); our requests are small JSON bodies (BODY_LIMIT_BYTES) that arrive at once.
/** A client must finish the TLS handshake within this. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** A client must send the whole header block within this. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** A client must send the whole request (headers and body) within this; at least HEADERS_TIMEOUT_MS. */
export const REQUEST_TIMEOUT_MS = 30_000;
/**
 * An idle keep-alive connection is closed after this. Node's own default; behind a load balancer
 * it must exceed the balancer's idle timeout, or the balancer may reuse a socket being closed.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** Whether a server from `startHttpServer` terminates TLS (was started with `tls`). */
export function isTlsServer(server: Server): server is HttpsServer {
  return server instanceof HttpsServer;
}

/**
 * Starts the gateway's HTTP(S) server and resolves once it listens; rejects when it cannot
 * listen (port in use, bad host) or, with `tls`, when a PEM file cannot be read or the
 * certificate and key cannot be used (`INVALID_CONFIG` naming the file). With `tls` the server
 * refuses every protocol older than TLS 1.3 at the handshake; use `isTlsServer` to tell which
 * kind was started.
 */
export async function startHttpServer({ handler, host, port, tls }: HttpServerOptions): Promise<Server> {
  const server = tls ? await createTlsServer(handler, tls) : createPlainServer(handler);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      reject(error);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return server;
}

async function createTlsServer(handler: RequestListener, { certFile, keyFile, caFile }: TlsFiles): Promise<Server> {
  const [cert, key, chain] = await Promise.all([
    readPem(certFile, 'TLS certificate'),
    readPem(keyFile, 'TLS private key'),
    caFile === undefined ? undefined : readPem(caFile, 'TLS CA chain'),
  ]);
  try {
    return createHttpsServer(
      {
        minVersion: 'TLSv1.3',
        // A certificate chain is the leaf followed by its intermediates, in order.
        cert: chain === undefined ? cert : `${cert.trimEnd()}\n${chain}`,
        key,
        handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
      },
      handler,
    );
  } catch (error) {
    // OpenSSL refuses malformed PEM and a key that does not match the certificate here.
    const files = caFile === undefined ? `${certFile}, ${keyFile}` : `${certFile}, ${keyFile}, ${caFile}`;
    throw new AppError(
      'INVALID_CONFIG',
      `TLS certificate or key is unusable (${files}): ${error instanceof Error ? error.message : String(error)}`,
      {
        details: { certFile, keyFile, ...(caFile === undefined ? {} : { caFile }) },
        cause: error,
      },
    );
  }
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new AppError('INVALID_CONFIG', `${what} file ${file} cannot be read (${reason})`, { details: { file }, cause: error });
  }
}
