import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { get as httpsGet, type RequestOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, TLSSocket, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { issueCertificate as issue, privateKeyPem, type Issued } from '@portcullis/test/test-pki';
import {
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  isTlsServer,
  startHttpServer,
  type TlsFiles,
} from '../src/http/server.js';

const host = '127.0.0.1';
const answer = 'hello from the gateway';
const handler: RequestListener = (_request, response) => {
  response.setHeader('content-type', 'text/plain');
  response.end(answer);
};

// ---- clients ----------------------------------------------------------------------------------

interface Answer {
  status: number | undefined;
  body: string;
}

async function readAnswer(response: IncomingMessage): Promise<Answer> {
  response.setEncoding('utf8');
  let body = '';
  for await (const chunk of response) body += chunk as string;
  return { status: response.statusCode, body };
}

/** An HTTPS GET with its own connection; resolves with the answer and the negotiated protocol. */
function getOverTls(port: number, options: RequestOptions): Promise<Answer & { protocol: string | null }> {
  return new Promise((resolve, reject) => {
    httpsGet({ host, port, path: '/', agent: false, ...options }, (response) => {
      const protocol = response.socket instanceof TLSSocket ? response.socket.getProtocol() : null;
      readAnswer(response).then((read) => {
        resolve({ ...read, protocol });
      }, reject);
    }).on('error', reject);
  });
}

/** A bare TLS handshake; resolves with the protocol on success, rejects with the handshake error. */
function handshake(port: number, options: ConnectionOptions): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...options }, () => {
      const protocol = socket.getProtocol();
      socket.destroy();
      resolve(protocol);
    });
    socket.on('error', (error: Error) => {
      socket.destroy();
      reject(error);
    });
  });
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

// ---- the servers under test -------------------------------------------------------------------

let dir: string;
let root: Issued;
const servers: Server[] = [];
/** Leaf signed by the root; the server sends only the leaf. */
let direct: Server;
/** Leaf signed by an intermediate, with the intermediate and the root in `caFile`. */
let chained: Server;
/** The same intermediate-signed leaf without `caFile`. */
let unchained: Server;
let plain: Server;
let files: TlsFiles;

async function start(tls?: TlsFiles): Promise<Server> {
  const server = await startHttpServer({ handler, host, port: 0, tls });
  servers.push(server);
  return server;
}

async function write(name: string, content: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, content, { mode: 0o600 });
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-tls-'));
  root = await issue({ subject: 'CN=Portcullis Test Root CA', ca: true });
  const leaf = await issue({ subject: 'CN=localhost', issuer: root, ca: false });
  const intermediate = await issue({ subject: 'CN=Portcullis Test Intermediate CA', issuer: root, ca: true });
  const chainedLeaf = await issue({ subject: 'CN=localhost', issuer: intermediate, ca: false });

  files = { certFile: await write('leaf.pem', leaf.pem), keyFile: await write('leaf-key.pem', await privateKeyPem(leaf.keys)) };
  const chainedFiles = {
    certFile: await write('chained-leaf.pem', chainedLeaf.pem),
    keyFile: await write('chained-leaf-key.pem', await privateKeyPem(chainedLeaf.keys)),
  };
  direct = await start(files);
  chained = await start({ ...chainedFiles, caFile: await write('chain.pem', `${intermediate.pem}\n${root.pem}`) });
  unchained = await start(chainedFiles);
  plain = await start();
});

afterAll(async () => {
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => {
            resolve();
          });
        }),
    ),
  );
  await rm(dir, { recursive: true, force: true });
});

describe('startHttpServer with tls', () => {
  // By IP address (no SNI; checked against the IP SAN) and by name (SNI; the DNS SAN).
  it.each([
    { name: '127.0.0.1', byName: {} },
    { name: 'localhost', byName: { servername: 'localhost' } },
  ])('answers a TLS 1.3 client that trusts only the generated CA ($name)', async ({ byName }) => {
    const got = await getOverTls(portOf(direct), { ca: root.pem, minVersion: 'TLSv1.3', ...byName });

    expect(got).toEqual({ status: 200, body: answer, protocol: 'TLSv1.3' });
    expect(isTlsServer(direct)).toBe(true);
  });

  it('refuses a client limited to TLS 1.2 at the handshake', async () => {
    await expect(handshake(portOf(direct), { ca: root.pem, maxVersion: 'TLSv1.2' })).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    });
  });

  it('fails verification for a client without the generated CA in its trust store', async () => {
    // The server sends only its leaf, whose issuer the client does not know.
    await expect(handshake(portOf(direct), {})).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    // The server sends its whole chain up to the self-signed root, which the client does not trust.
    await expect(handshake(portOf(chained), {})).rejects.toMatchObject({ code: 'SELF_SIGNED_CERT_IN_CHAIN' });
  });

  it('sends the caFile chain after the leaf, so a client trusting only the root verifies an intermediate-signed leaf', async () => {
    await expect(handshake(portOf(chained), { ca: root.pem, servername: 'localhost' })).resolves.toBe('TLSv1.3');
    await expect(handshake(portOf(unchained), { ca: root.pem, servername: 'localhost' })).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  it.each(['certFile', 'keyFile', 'caFile'] as const)('rejects with INVALID_CONFIG naming a missing %s', async (field) => {
    const missing = join(dir, `missing-${field}.pem`);

    const started = startHttpServer({ handler, host, port: 0, tls: { ...files, [field]: missing } });

    await expect(started).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining(missing) });
  });

  it('rejects with INVALID_CONFIG naming the files when the key does not match the certificate', async () => {
    const otherKey = await write('root-key.pem', await privateKeyPem(root.keys));

    const started = startHttpServer({ handler, host, port: 0, tls: { ...files, keyFile: otherKey } });

    await expect(started).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining(otherKey) });
  });
});

describe('startHttpServer without tls', () => {
  it('serves plain HTTP', async () => {
    const got = await new Promise<Answer>((resolve, reject) => {
      httpGet({ host, port: portOf(plain), path: '/', agent: false }, (response) => {
        readAnswer(response).then(resolve, reject);
      }).on('error', reject);
    });

    expect(got).toEqual({ status: 200, body: answer });
    expect(isTlsServer(plain)).toBe(false);
  });

  it('sets the conservative timeouts', () => {
    for (const server of [plain, direct]) {
      expect(server).toMatchObject({
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      });
    }
  });

  it('rejects when it cannot listen', async () => {
    await expect(startHttpServer({ handler, host, port: portOf(plain) })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
