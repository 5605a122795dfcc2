import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import fc from 'fast-check';
import { ApiKeyKind } from '@portcullis/proto/auth';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import type { CheckRequest } from '@portcullis/proto/policy';
import type { AccessClaims } from '../libraries/access-tokens.js';
import { apiKeyOf, createApiKeyVerifier } from '../libraries/api-keys.js';
import { createRobotTokenVerifier, isRobotToken } from '../libraries/robot-tokens.js';
import { createDecisionAuditor } from './audit-decision.js';
import { bearerTokenOf } from './authenticate.js';
import { createPipeline } from './index.js';
import type { RequestInfo } from './types.js';
import { passThroughLimits, requestInfo } from '../test-support/pipeline-fakes.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const assistantA = '00000000-0000-4000-8000-0000000000a1';
const alice = '00000000-0000-4000-8000-0000000000f1';
const token = 'aaa.bbb.ccc';
const liveSession = 'session-1';
const bob = '00000000-0000-4000-8000-0000000000f2';
const keyOf = (id: string) => `pck_${id.padEnd(16, '0')}_${'s'.repeat(43)}`;
/** Keys the fake auth service knows: tenant key of A, user key of bob in A, tenant key of B. */
const keys = new Map([
  [
    keyOf('tenanta'),
    { keyId: 'tenanta', tenantId: tenantA, kind: ApiKeyKind.TENANT, userId: '', createdByUserId: alice, scopes: ['tools:invoke'] },
  ],
  [
    keyOf('userbob'),
    {
      keyId: 'userbob',
      tenantId: tenantA,
      kind: ApiKeyKind.USER,
      userId: bob,
      createdByUserId: bob,
      scopes: ['tools:invoke', 'audit:read'],
    },
  ],
  [
    keyOf('tenantb'),
    { keyId: 'tenantb', tenantId: tenantB, kind: ApiKeyKind.TENANT, userId: '', createdByUserId: alice, scopes: ['tools:invoke'] },
  ],
]);
const claimsOf = (tenantId: string, role: Role, sessionId = liveSession): AccessClaims => ({
  userId: alice,
  tenantId,
  role,
  sessionId,
  expiresAt: Date.now() + 60_000,
});
const robotA = '00000000-0000-4000-8000-0000000000c1';
const robotB = '00000000-0000-4000-8000-0000000000c2';
const team1 = '00000000-0000-4000-8000-0000000000e1';
const team2 = '00000000-0000-4000-8000-0000000000e2';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A bearer JWT whose header says robot+jwt; the fake auth service knows it by its payload's name. */
const robotToken = (name: string, typ = 'robot+jwt') => `${b64({ alg: 'ES256', kid: 'k1', typ })}.${b64({ name })}.c2ln`;
/** What the fake auth service answers for each robot token (an answer, or the error it throws). */
const robots = new Map<string, object | AppError>([
  [robotToken('alpha'), { robotId: robotA, tenantId: tenantA, robotName: 'builder', creatorId: alice, teamIds: [team1, team2] }],
  [robotToken('beta'), { robotId: robotB, tenantId: tenantB, robotName: 'other', creatorId: bob, teamIds: [team1] }],
  [robotToken('revoked'), new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token')],
  [robotToken('creator-removed'), new AppError('UNAUTHENTICATED', "the robot's creator no longer belongs to this tenant")],
  [robotToken('no-teams'), new AppError('PERMISSION_DENIED', "the robot's creator no longer holds any of the robot's teams")],
  [robotToken('registry-down'), new AppError('DEPENDENCY_UNAVAILABLE', 'a required service is unavailable')],
  [robotToken('auth-broken'), new AppError('INTERNAL', 'Internal error')],
  [robotToken('no-team-answer'), { robotId: robotA, tenantId: tenantA, robotName: 'builder', creatorId: alice, teamIds: [] }],
  [robotToken('bad-creator'), { robotId: robotA, tenantId: tenantA, robotName: 'builder', creatorId: '', teamIds: [team1] }],
]);

function fakes({
  claims,
  allowed = true,
  policyDown = false,
}: {
  claims: AccessClaims;
  allowed?: boolean | ((request: CheckRequest) => boolean);
  policyDown?: boolean;
}) {
  const audited: { allowed: boolean; reason: string; tenantId: string; outcome: Outcome }[] = [];
  const policyCalls: CheckRequest[] = [];
  const authCalls: string[] = [];
  const robotCalls: string[] = [];
  const accessCalls: string[] = [];
  const auditedPrincipals: unknown[] = [];
  const pipeline = createPipeline({
    ...passThroughLimits,
    platformHosts: ['localhost'],
    tenants: {
      async resolveContext(request) {
        if (request.host === 'alpha.example' || request.assistantId === assistantA) {
          return { context: { tenantId: tenantA, tenantName: 'Alpha', assistantId: assistantA } } as never;
        }
        if (request.tenantId) return { context: { tenantId: request.tenantId, tenantName: 'T', assistantId: '' } } as never;
        throw new AppError('NOT_FOUND', 'no tenant is configured for this host');
      },
    },
    isSessionActive: async (sessionId) => sessionId === liveSession,
    verifyAccessToken: async (presented) => {
      accessCalls.push(presented);
      if (presented !== token) throw new AppError('UNAUTHENTICATED', 'invalid or expired credential');
      return claims;
    },
    policy: {
      async check(request) {
        policyCalls.push(request as CheckRequest);
        if (policyDown) throw new AppError('DEPENDENCY_UNAVAILABLE', 'policy is unavailable');
        const yes = typeof allowed === 'function' ? allowed(request as CheckRequest) : allowed;
        return { allowed: yes, reason: yes ? 'granted by role:owner' : 'no role grants it' } as never;
      },
    },
    verifyApiKey: createApiKeyVerifier({
      auth: {
        async verifyApiKey({ key = '' }) {
          authCalls.push(key);
          const found = keys.get(key);
          if (!found) throw new AppError('UNAUTHENTICATED', 'invalid, expired or revoked API key');
          return found as never;
        },
      },
    }),
    verifyRobotToken: createRobotTokenVerifier({
      auth: {
        async verifyRobotToken({ token: presented = '' }) {
          robotCalls.push(presented);
          const found = robots.get(presented) ?? new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token');
          if (found instanceof AppError) throw found;
          return found as never;
        },
      },
    }),
    auditDecision: createDecisionAuditor({
      async publish(event) {
        auditedPrincipals.push(event.principal);
        audited.push({
          allowed: event.outcome === Outcome.ALLOW,
          reason: event.reason ?? '',
          tenantId: event.tenantId,
          outcome: event.outcome ?? Outcome.UNSPECIFIED,
        });
        return 'id';
      },
    }),
  });
  return { pipeline, audited, policyCalls, authCalls, robotCalls, accessCalls, auditedPrincipals };
}

const request = (overrides: Partial<RequestInfo> = {}): RequestInfo => requestInfo({ authorization: `Bearer ${token}`, ...overrides });
const capability = { object: 'tools', action: 'invoke' };

describe('ordered pipeline', () => {
  it('resolves, authenticates, authorizes and audits the allow', async () => {
    const { pipeline, audited } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    const context = await pipeline.run(request(), capability);
    expect(context.target).toEqual({ tenantId: tenantA, tenantName: 'Alpha', assistantId: assistantA });
    expect(context.principal.id).toBe(alice);
    expect(audited).toEqual([{ allowed: true, reason: 'granted by role:owner', tenantId: tenantA, outcome: Outcome.ALLOW }]);
  });

  it('rejects a valid token whose session has ended, before asking the policy', async () => {
    const { pipeline, policyCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER, 'revoked-session') });
    await expect(pipeline.run(request(), capability)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: expect.stringContaining('session has ended'),
    });
    expect(policyCalls).toHaveLength(0);
  });

  it('carries the session of the credential to the route', async () => {
    const { pipeline } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    const context = await pipeline.run(request(), capability);
    expect(context.credential).toEqual({ kind: 'access_token', sessionId: liveSession, via: 'header' });
  });

  it('rejects a request with no credential before asking the policy', async () => {
    const { pipeline, policyCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await expect(pipeline.run(request({ authorization: undefined }), capability)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(policyCalls).toHaveLength(0);
  });

  it("rejects and audits a credential of another tenant on this tenant's domain", async () => {
    const { pipeline, audited, policyCalls } = fakes({ claims: claimsOf(tenantB, Role.OWNER) });
    await expect(pipeline.run(request(), capability)).rejects.toMatchObject({ code: 'CROSS_TENANT' });
    expect(policyCalls).toHaveLength(0);
    expect(audited).toEqual([{ allowed: false, reason: 'credential belongs to another tenant', tenantId: tenantA, outcome: Outcome.DENY }]);
  });

  it('answers an assistant id of another tenant exactly like an unknown one (existence must not leak)', async () => {
    const { pipeline, audited } = fakes({ claims: claimsOf(tenantB, Role.OWNER) });
    const foreign = pipeline.run(request({ host: 'localhost', assistantId: assistantA }), capability);
    await expect(foreign).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no tenant is configured for this request' });
    expect(audited[0]).toMatchObject({ allowed: false, tenantId: tenantA });
  });

  it('denies and audits a missing capability', async () => {
    const { pipeline, audited } = fakes({ claims: claimsOf(tenantA, Role.USER), allowed: false });
    await expect(pipeline.run(request(), capability)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(audited[0]).toMatchObject({ allowed: false, outcome: Outcome.DENY });
  });

  it('denies with DEPENDENCY_UNAVAILABLE when the policy service fails, never allows', async () => {
    const { pipeline, audited } = fakes({ claims: claimsOf(tenantA, Role.OWNER), policyDown: true });
    await expect(pipeline.run(request(), capability)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(audited[0]).toMatchObject({ allowed: false, reason: 'policy service unavailable' });
  });

  it('on a platform host takes the tenant from the credential and confirms it with the registry', async () => {
    const { pipeline } = fakes({ claims: claimsOf(tenantB, Role.ADMIN) });
    const context = await pipeline.run(request({ host: 'localhost' }), capability);
    expect(context.target.tenantId).toBe(tenantB);
    expect(context.target.assistantId).toBe('');
  });

  it('rejects an X-Assistant-Id that is not a UUID', async () => {
    const { pipeline } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await expect(pipeline.run(request({ assistantId: '../etc' }), capability)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('API keys in the pipeline', () => {
  const withKey = (key: string, overrides: Partial<RequestInfo> = {}) => request({ authorization: undefined, apiKey: key, ...overrides });

  it('rejects two credentials (token and API key) before verifying either', async () => {
    const { pipeline, policyCalls, authCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await expect(pipeline.run(request({ apiKey: keyOf('tenanta') }), capability)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'send exactly one credential',
    });
    expect(authCalls).toHaveLength(0);
    expect(policyCalls).toHaveLength(0);
  });

  it("lets a tenant key act within its scopes and its creator's current rights, as an API_KEY principal", async () => {
    const { pipeline, audited, policyCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    const context = await pipeline.run(withKey(keyOf('tenanta')), capability);
    expect(context.principal).toMatchObject({ kind: PrincipalKind.API_KEY, id: 'tenanta', tenantId: tenantA });
    expect(context.credential).toMatchObject({ kind: 'api_key', keyKind: 'tenant', createdBy: alice });
    expect(policyCalls[0]?.principal).toMatchObject({ kind: PrincipalKind.USER, id: alice, tenantId: tenantA });
    expect(audited[0]).toMatchObject({ allowed: true, outcome: Outcome.ALLOW });
    await expect(pipeline.run(withKey(keyOf('tenanta')), { object: 'audit', action: 'read' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    expect(audited[1]).toMatchObject({ allowed: false, reason: 'API key scopes do not include audit:read' });
  });

  it('stops a tenant key once its creator no longer holds the capability', async () => {
    const { pipeline, audited } = fakes({ claims: claimsOf(tenantA, Role.OWNER), allowed: false });
    await expect(pipeline.run(withKey(keyOf('tenanta')), capability)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(audited[0]).toMatchObject({ allowed: false, reason: `as user ${alice}: no role grants it` });
  });

  it("rejects and audits a key of another tenant on this tenant's domain", async () => {
    const { pipeline, audited, policyCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await expect(pipeline.run(withKey(keyOf('tenantb')), capability)).rejects.toMatchObject({ code: 'CROSS_TENANT' });
    expect(policyCalls).toHaveLength(0);
    expect(audited).toEqual([{ allowed: false, reason: 'credential belongs to another tenant', tenantId: tenantA, outcome: Outcome.DENY }]);
  });

  it("caps a user key by its user's rights: the policy is asked as the user", async () => {
    const { pipeline, policyCalls, audited } = fakes({ claims: claimsOf(tenantA, Role.OWNER), allowed: () => false });
    await expect(pipeline.run(withKey(keyOf('userbob')), capability)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(policyCalls[0]?.principal).toMatchObject({ kind: PrincipalKind.USER, id: bob, tenantId: tenantA });
    expect(audited[0]).toMatchObject({ allowed: false, reason: `as user ${bob}: no role grants it` });
  });

  it('caps a user key by its scopes even when its user holds the capability', async () => {
    const { pipeline, policyCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER), allowed: true });
    await expect(pipeline.run(withKey(keyOf('userbob')), { object: 'devices', action: 'manage' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    expect(policyCalls).toHaveLength(0);
    const allowed = await pipeline.run(withKey(keyOf('userbob')), capability);
    expect(allowed.principal).toMatchObject({ kind: PrincipalKind.API_KEY, id: 'userbob' });
  });

  it('refuses an unknown or revoked key with UNAUTHENTICATED', async () => {
    const { pipeline, policyCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await expect(pipeline.run(withKey(keyOf('revoked')), capability)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(policyCalls).toHaveLength(0);
  });

  it('key parser: random bytes are only ever refused with UNAUTHENTICATED, never sent on, never allowed', async () => {
    const { pipeline, authCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
          fc.string({ minLength: 1 }).map((text) => `pck_${text}`),
        ),
        async (header) => {
          expect(() => apiKeyOf(header)).toThrow(AppError);
          await expect(pipeline.run(withKey(header), capability)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
        },
      ),
    );
    expect(authCalls).toHaveLength(0);
  });
});

describe('robot tokens in the pipeline', () => {
  const withRobot = (name: string, overrides: Partial<RequestInfo> = {}) =>
    request({ authorization: `Bearer ${robotToken(name)}`, ...overrides });

  it('authenticates a robot token with auth as a ROBOT principal acting for its creator, and asks the policy with it unchanged', async () => {
    const { pipeline, policyCalls, audited, auditedPrincipals, robotCalls, accessCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    const context = await pipeline.run(withRobot('alpha'), capability);
    expect(context.principal).toMatchObject({
      kind: PrincipalKind.ROBOT,
      id: robotA,
      tenantId: tenantA,
      role: Role.UNSPECIFIED,
      actingUserId: alice,
      teamIds: [team1, team2],
    });
    expect(context.credential).toEqual({ kind: 'robot', robotId: robotA, creatorId: alice, teamIds: [team1, team2] });
    expect(policyCalls[0]?.principal).toEqual(context.principal);
    expect(audited[0]).toMatchObject({ allowed: true, outcome: Outcome.ALLOW });
    expect(auditedPrincipals[0]).toMatchObject({ kind: PrincipalKind.ROBOT, id: robotA });
    expect(robotCalls).toEqual([robotToken('alpha')]);
    expect(accessCalls).toHaveLength(0);
  });

  it('sends an access token to the local verifier only, never to auth as a robot token', async () => {
    const { pipeline, robotCalls, accessCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await pipeline.run(request(), capability);
    await expect(pipeline.run(withRobot('alpha', {}), capability)).resolves.toBeDefined();
    // A robot token relabelled at+jwt goes to the access-token verifier, which refuses it.
    await expect(pipeline.run(request({ authorization: `Bearer ${robotToken('alpha', 'at+jwt')}` }), capability)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    expect(accessCalls).toEqual([token, robotToken('alpha', 'at+jwt')]);
    expect(robotCalls).toEqual([robotToken('alpha')]);
    expect(isRobotToken(robotToken('x', 'application/ROBOT+JWT'))).toBe(true);
    expect(isRobotToken(robotToken('x', 'at+jwt'))).toBe(false);
    expect(isRobotToken('not.a.jwt')).toBe(false);
  });

  it('denies and audits a robot whose creator does not hold the capability (the policy decides)', async () => {
    const { pipeline, audited } = fakes({ claims: claimsOf(tenantA, Role.OWNER), allowed: false });
    await expect(pipeline.run(withRobot('alpha'), capability)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(audited[0]).toMatchObject({ allowed: false, outcome: Outcome.DENY });
  });

  it("rejects and audits a robot of another tenant on this tenant's domain, before asking the policy", async () => {
    const { pipeline, audited, policyCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await expect(pipeline.run(withRobot('beta'), capability)).rejects.toMatchObject({ code: 'CROSS_TENANT' });
    expect(policyCalls).toHaveLength(0);
    expect(audited).toEqual([{ allowed: false, reason: 'credential belongs to another tenant', tenantId: tenantA, outcome: Outcome.DENY }]);
  });

  it.each([
    ['a revoked robot', 'revoked', 'UNAUTHENTICATED'],
    ['a robot whose creator left the tenant', 'creator-removed', 'UNAUTHENTICATED'],
    ['a robot whose creator holds none of its teams', 'no-teams', 'PERMISSION_DENIED'],
    ['an unknown robot token', 'unknown', 'UNAUTHENTICATED'],
    ['an answer without teams', 'no-team-answer', 'UNAUTHENTICATED'],
    ['an answer without a creator', 'bad-creator', 'UNAUTHENTICATED'],
    ['tenant-registry down behind auth', 'registry-down', 'DEPENDENCY_UNAVAILABLE'],
    ['auth failing unexpectedly', 'auth-broken', 'DEPENDENCY_UNAVAILABLE'],
  ])('refuses %s before asking the policy', async (_label, name, code) => {
    const { pipeline, policyCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await expect(pipeline.run(withRobot(name), capability)).rejects.toMatchObject({ code });
    expect(policyCalls).toHaveLength(0);
  });

  it('rejects a robot token together with an API key before verifying either', async () => {
    const { pipeline, robotCalls, authCalls } = fakes({ claims: claimsOf(tenantA, Role.OWNER) });
    await expect(pipeline.run(withRobot('alpha', { apiKey: keyOf('tenanta') }), capability)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'send exactly one credential',
    });
    expect(robotCalls).toHaveLength(0);
    expect(authCalls).toHaveLength(0);
  });
});

describe('bearerTokenOf', () => {
  it.each([undefined, '', 'Basic abc', 'Bearer', 'Bearer a.b', 'Bearer a.b.c extra', 'bearer a.b.c', 'Bearer a.b.c, Bearer d.e.f'])(
    'rejects %p',
    (header) => {
      expect(() => bearerTokenOf(header)).toThrow(AppError);
    },
  );

  it('accepts exactly one compact JWT', () => {
    expect(bearerTokenOf('Bearer aa.bb.cc')).toBe('aa.bb.cc');
  });
});
