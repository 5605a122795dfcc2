import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import { denyWhenUnavailable } from '../libraries/dependency-failure.js';
import { passThroughLimits, requestInfo } from '../test-support/pipeline-fakes.js';
import { createPipeline } from './index.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const capability = { object: 'tools', action: 'invoke' };
const slow = () => Promise.reject(new AppError('DEADLINE_EXCEEDED', 'deadline exceeded'));
const apiKey = `pck_${'a'.repeat(16)}_${'s'.repeat(43)}`;

/** A pipeline whose named dependency misses its deadline; everything else answers. */
function pipelineWith(slowDependency: 'registry' | 'auth' | 'policy') {
  const audited: boolean[] = [];
  const pipeline = createPipeline({
    ...passThroughLimits,
    platformHosts: ['localhost'],
    tenants: {
      resolveContext: () =>
        slowDependency === 'registry'
          ? slow()
          : Promise.resolve({ context: { tenantId: tenantA, tenantName: 'A', tenantPlan: 'free', assistantId: '' } } as never),
    },
    verifyAccessToken: () =>
      Promise.resolve({ userId: tenantA, tenantId: tenantA, role: Role.OWNER, sessionId: 's1', expiresAt: Date.now() + 60_000 }),
    verifyApiKey: () => (slowDependency === 'auth' ? slow() : Promise.reject(new AppError('UNAUTHENTICATED', 'invalid key'))),
    verifyRobotToken: slow,
    isSessionActive: () => Promise.resolve(true),
    policy: { check: () => (slowDependency === 'policy' ? slow() : Promise.resolve({ allowed: true, reason: 'ok' } as never)) },
    auditDecision: ({ allowed }) => {
      audited.push(allowed);
      return Promise.resolve();
    },
  });
  return { pipeline, audited };
}

describe('a dependency that is down or slow', () => {
  it('denies with 503 DEPENDENCY_UNAVAILABLE naming it, never a 504 and never an allow', async () => {
    const cases = [
      ['registry', requestInfo({ host: 'alpha.example', authorization: 'Bearer a.b.c' }), 'the tenant registry'],
      ['registry', requestInfo({ host: 'localhost', authorization: 'Bearer a.b.c' }), 'the tenant registry'],
      ['auth', requestInfo({ host: 'localhost', apiKey }), 'the auth service'],
      ['policy', requestInfo({ host: 'localhost', authorization: 'Bearer a.b.c' }), 'the authorization service'],
    ] as const;
    for (const [dependency, request, named] of cases) {
      const { pipeline, audited } = pipelineWith(dependency);
      const error = await pipeline.run(request, capability).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect({ dependency, error }).toEqual({ dependency, error: expect.objectContaining({ code: 'DEPENDENCY_UNAVAILABLE' }) });
      expect((error as AppError).message).toContain(named);
      expect(audited).not.toContain(true);
    }
  });

  it("passes a dependency's real answers on unchanged", () => {
    for (const code of ['NOT_FOUND', 'UNAUTHENTICATED', 'TENANT_SUSPENDED', 'PERMISSION_DENIED'] as const) {
      expect(() => denyWhenUnavailable('x')(new AppError(code, 'no'))).toThrow(expect.objectContaining({ code }));
    }
    for (const thrown of [new AppError('INTERNAL', 'boom'), new AppError('DEADLINE_EXCEEDED', 'slow'), new Error('bug')]) {
      expect(() => denyWhenUnavailable('the x service')(thrown)).toThrow('the x service is unavailable; request denied');
    }
  });
});
