import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { AppError, createLogger, type AuditEventInit } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { createApp } from '../app.js';
import { defaultRateLimits } from '../libraries/rate-limit-config.js';
import { createRateLimiter } from '../libraries/rate-limiter.js';
import type { AuthorizedContext, Pipeline } from '../pipeline/index.js';
import { createRequestErrorAuditor } from './audit-request-error.js';
import type { ProtectedRoute } from './route.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const assistantId = '00000000-0000-4000-8000-0000000000c1';
const principal = { kind: PrincipalKind.USER, id: '00000000-0000-4000-8000-0000000000f1', tenantId };
const contextOf = (requestId: string) =>
  ({
    request: { requestId },
    target: { tenantId, tenantName: 'Alpha', assistantId },
    principal,
    capability: { object: 'tools', action: 'invoke' },
    rateLimit: { limit: 10, remaining: 9, resetSeconds: 60, windowSeconds: 60 },
  }) as unknown as AuthorizedContext;

function recording({ refuses = false } = {}) {
  const events: AuditEventInit[] = [];
  const logged: unknown[] = [];
  const auditor = createRequestErrorAuditor({
    audit: {
      publish(event) {
        if (refuses) return Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', 'the audit trail is unavailable'));
        events.push(event);
        return Promise.resolve('event-id');
      },
    },
    logger: { error: (...args: unknown[]) => logged.push(args) },
  });
  return { auditor, events, logged };
}

const route = { method: 'post', path: '/api/tools/:name/invoke' };

describe('request.error events', () => {
  it('records an allowed request that failed with an internal or dependency error: its code, never its message', async () => {
    const { auditor, events } = recording();
    await auditor(contextOf('req-1'), route, new AppError('DEPENDENCY_UNAVAILABLE', 'tool-gateway at 10.0.0.7:50054 is down'));
    await auditor(contextOf('req-2'), route, new Error('TypeError: secret internals'));
    expect(events).toEqual([
      {
        tenantId,
        kind: 'request.error',
        principal,
        assistantId,
        object: 'tools',
        action: 'invoke',
        outcome: Outcome.FAILURE,
        reason: 'DEPENDENCY_UNAVAILABLE',
        requestId: 'req-1',
        attributes: { method: 'POST', route: '/api/tools/:name/invoke', status: '503' },
      },
      expect.objectContaining({ reason: 'INTERNAL', requestId: 'req-2', attributes: expect.objectContaining({ status: '500' }) }),
    ]);
    expect(JSON.stringify(events)).not.toMatch(/10\.0\.0\.7|secret internals/);
  });

  it('records nothing for what the caller did wrong (4xx)', async () => {
    const { auditor, events } = recording();
    for (const code of ['INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED'] as const) {
      await auditor(contextOf('req-3'), route, new AppError(code, 'no'));
    }
    expect(events).toEqual([]);
  });

  it('never changes the answer when the event is refused, and logs the refusal', async () => {
    const { auditor, logged } = recording({ refuses: true });
    await expect(auditor(contextOf('req-4'), route, new AppError('INTERNAL', 'boom'))).resolves.toBeUndefined();
    expect(logged).toHaveLength(1);
  });
});

describe('the app records failed protected requests', () => {
  const { auditor, events } = recording();
  let server: Server;
  let base: string;
  let sequence = 0;

  beforeAll(async () => {
    const failing = (path: string, error: () => Error): ProtectedRoute => ({
      kind: 'protected',
      method: 'post',
      path,
      capability: { object: 'tools', action: 'invoke' },
      summary: path,
      handle: () => Promise.reject(error()),
    });
    const pipeline = {
      resolveContext: () => Promise.reject(new Error('unused')),
      run: () => Promise.resolve(contextOf(`req-${String((sequence += 1))}`)),
    } as unknown as Pipeline;
    const app = createApp({
      logger: createLogger({ name: 'request-error-test', level: 'silent' }),
      pipeline,
      publicRoutes: [],
      protectedRoutes: [
        failing('/dependency', () => new AppError('DEPENDENCY_UNAVAILABLE', 'policy at 10.0.0.9 is down')),
        failing('/crash', () => new Error('undefined is not a function')),
        failing('/missing', () => new AppError('NOT_FOUND', 'no such tool')),
      ],
      bodyLimitBytes: 1024,
      maxJsonDepth: 4,
      corsOrigins: [],
      sessionCookieName: '__Host-portcullis_session',
      consumeRateLimit: createRateLimiter({
        limiters: (window, keyPrefix) => new RateLimiterMemory({ points: window.points, duration: window.windowSeconds, keyPrefix }),
        keyPrefix: 'request-error-test:',
      }),
      rateLimits: defaultRateLimits,
      auditRequestError: auditor,
    });
    server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('answers as before and records 5xx failures only, with the route and the code', async () => {
    const answers = [];
    for (const path of ['/dependency', '/crash', '/missing']) {
      const response = await fetch(`${base}${path}`, { method: 'POST' });
      answers.push({ path, status: response.status, code: ((await response.json()) as { error: { code: string } }).error.code });
    }
    expect(answers).toEqual([
      { path: '/dependency', status: 503, code: 'DEPENDENCY_UNAVAILABLE' },
      { path: '/crash', status: 500, code: 'INTERNAL' },
      { path: '/missing', status: 404, code: 'NOT_FOUND' },
    ]);
    expect(events.map((event) => [event.reason, event.attributes?.['route'], event.requestId])).toEqual([
      ['DEPENDENCY_UNAVAILABLE', '/dependency', 'req-1'],
      ['INTERNAL', '/crash', 'req-2'],
    ]);
  });
});
