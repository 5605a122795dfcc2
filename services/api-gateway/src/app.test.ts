import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { AppError, createLogger } from '@portcullis/kit';
import { createApp } from './app.js';
import { defaultRateLimits } from './libraries/rate-limit-config.js';
import { createRateLimiter } from './libraries/rate-limiter.js';
import type { Pipeline } from './pipeline/index.js';
import { createRoutes } from './routes/index.js';
import { fakeRouteDeps } from './test-support/route-fakes.js';

const consoleOrigin = 'https://console.example.com';

/** The app with every route, over a pipeline that refuses every protected request. */
function appUnderTest() {
  const refuse = () => Promise.reject(new AppError('UNAUTHENTICATED', 'no credential'));
  const pipeline = { resolveContext: refuse, run: refuse } as unknown as Pipeline;
  const { publicRoutes, protectedRoutes } = createRoutes(fakeRouteDeps());
  return createApp({
    logger: createLogger({ name: 'app-test', level: 'silent' }),
    pipeline,
    publicRoutes,
    protectedRoutes,
    bodyLimitBytes: 1024,
    maxJsonDepth: 4,
    corsOrigins: [consoleOrigin],
    sessionCookieName: '__Host-portcullis_session',
    consumeRateLimit: createRateLimiter({
      limiters: (window, keyPrefix) => new RateLimiterMemory({ points: window.points, duration: window.windowSeconds, keyPrefix }),
      keyPrefix: 'app-test:',
    }),
    rateLimits: defaultRateLimits,
  });
}

let server: Server;
let base: string;
beforeAll(async () => {
  server = await new Promise<Server>((resolve) => {
    const listening = appUnderTest().listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('gateway app: web security', () => {
  it('sends the security headers on every answer, errors included', async () => {
    for (const path of ['/api/context', '/no/such/route']) {
      const response = await fetch(`${base}${path}`);
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
      expect(response.headers.get('strict-transport-security')).toMatch(/^max-age=\d+/);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('x-powered-by')).toBeNull();
      expect(response.headers.get('etag')).toBeNull();
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('answers CORS only for the configured origins, with credentials and the rate-limit headers exposed', async () => {
    const preflight = await fetch(`${base}/api/tools`, {
      method: 'OPTIONS',
      headers: { origin: consoleOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-csrf-token' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(consoleOrigin);
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('X-CSRF-Token');
    const simple = await fetch(`${base}/api/context`, { headers: { origin: consoleOrigin } });
    expect(simple.headers.get('access-control-expose-headers')).toContain('Retry-After');
    const foreign = await fetch(`${base}/api/context`, { headers: { origin: 'https://evil.example' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const foreignPreflight = await fetch(`${base}/api/tools`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(foreignPreflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses oversized and too deeply nested bodies before any route, with the error envelope and no internals', async () => {
    const post = (body: string) =>
      fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const big = await post(JSON.stringify({ email: 'x'.repeat(2048), password: 'p' }));
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({
      error: { code: 'PAYLOAD_TOO_LARGE', message: 'request body is too large', requestId: expect.any(String) },
    });
    const deep = await post('{"a":[[[[1]]]]}');
    expect(deep.status).toBe(400);
    const deepBody = (await deep.json()) as { error: { code: string; message: string } };
    expect(deepBody.error.code).toBe('INVALID_ARGUMENT');
    expect(deepBody.error.message).toMatch(/nested too deeply/);
    // Another charset would be decoded after the byte scan, and is not JSON between systems anyway.
    const utf16 = await fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-16le' },
      body: Buffer.from(`["\u2200",${'['.repeat(100)}${']'.repeat(101)}`, 'utf16le'),
    });
    expect(utf16.status).toBe(400);
    expect(((await utf16.json()) as { error: { message: string } }).error.message).toBe('request bodies must be JSON in UTF-8');
    const broken = await post('{"email": ');
    expect(broken.status).toBe(400);
    expect(JSON.stringify(await broken.json())).not.toMatch(/at .*\.js|SyntaxError/);
  });
});
