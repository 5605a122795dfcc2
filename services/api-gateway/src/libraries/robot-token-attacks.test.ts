import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose';
import { AppError, httpStatusOf } from '@portcullis/kit';
import { createDecisionAuditor } from '../pipeline/audit-decision.js';
import { createPipeline } from '../pipeline/index.js';
import type { RequestInfo } from '../pipeline/types.js';
import { createAccessTokenVerifier } from './access-tokens.js';
import { createRobotTokenVerifier } from './robot-tokens.js';
import { oneCharacterForgeries } from '@portcullis/test/jwt-mutations';
import { passThroughLimits, requestInfo } from '../test-support/pipeline-fakes.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const robotId = '00000000-0000-4000-8000-0000000000c1';
const creator = '00000000-0000-4000-8000-0000000000f1';
const team1 = '00000000-0000-4000-8000-0000000000e1';
const team2 = '00000000-0000-4000-8000-0000000000e2';
const issuer = 'portcullis-auth';
const audience = 'portcullis';
const capability = { object: 'tools', action: 'invoke' };

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/**
 * The gateway's pipeline with its real access-token verifier and robot-token verifier. The
 * auth service behind the robot verifier is a stand-in that checks tokens the way auth does
 * (jose, ES256 only, typ robot+jwt, iss, aud, exp, registration); auth's own verification is
 * attacked in services/auth/src/libraries/robot-tokens.test.ts. The policy allows everything,
 * so any credential that got through would be an allow.
 */
async function setUp() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const keys = createLocalJWKSet({ keys: [jwk] });
  const policyCalls: unknown[] = [];
  const robotCalls: string[] = [];
  const registered = new Map([[robotId, { tenantId: tenantA, creatorId: creator, teamIds: [team1, team2] }]]);

  const pipeline = createPipeline({
    ...passThroughLimits,
    platformHosts: ['localhost'],
    tenants: {
      async resolveContext(request) {
        if (request.host === 'alpha.example') return { context: { tenantId: tenantA, tenantName: 'Alpha', assistantId: '' } } as never;
        if (request.tenantId) return { context: { tenantId: request.tenantId, tenantName: 'T', assistantId: '' } } as never;
        throw new AppError('NOT_FOUND', 'no tenant is configured for this host');
      },
    },
    isSessionActive: async () => true,
    verifyAccessToken: createAccessTokenVerifier({ keys, issuer, audience }),
    verifyApiKey: async () => {
      throw new AppError('UNAUTHENTICATED', 'invalid, expired or revoked API key');
    },
    verifyRobotToken: createRobotTokenVerifier({
      auth: {
        async verifyRobotToken({ token = '' }) {
          robotCalls.push(token);
          const refused = new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token');
          const { payload } = await jwtVerify(token, keys, { algorithms: ['ES256'], typ: 'robot+jwt', issuer, audience }).catch(() => {
            throw refused;
          });
          const robot = typeof payload.sub === 'string' ? registered.get(payload.sub) : undefined;
          if (
            !robot ||
            payload.tenantId !== robot.tenantId ||
            JSON.stringify(payload.teamIds) !== JSON.stringify(robot.teamIds) ||
            payload.creatorId !== robot.creatorId
          ) {
            throw refused;
          }
          return {
            robotId: payload.sub,
            tenantId: robot.tenantId,
            robotName: 'builder',
            creatorId: robot.creatorId,
            teamIds: robot.teamIds,
          } as never;
        },
      },
    }),
    policy: {
      async check(request) {
        policyCalls.push(request);
        return { allowed: true, reason: 'allowed by the test policy' } as never;
      },
    },
    auditDecision: createDecisionAuditor({ publish: async () => 'id' }),
  });

  const claims = { robotName: 'builder', creatorId: creator, tenantId: tenantA, teamIds: [team1, team2] };
  const robot = (header: Record<string, unknown> = {}, extra: { claims?: Record<string, unknown>; exp?: number } = {}) => {
    const jwt = new SignJWT({ ...claims, ...extra.claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'robot+jwt', ...header })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(robotId)
      .setJti(robotId)
      .setIssuedAt();
    if (extra.exp !== undefined) jwt.setExpirationTime(extra.exp);
    return jwt.sign(privateKey);
  };
  const access = () =>
    new SignJWT({ tenantId: tenantA, role: 'owner', sid: 's1' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setSubject(creator)
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
  const run = (authorization: string, host = 'alpha.example') => {
    const request: RequestInfo = requestInfo({ host, authorization });
    return pipeline.run(request, capability);
  };
  return { run, robot, access, publicKey, jwk, privateKey, policyCalls, robotCalls, keys };
}

/** A hostile credential may only be refused as UNAUTHENTICATED, before the policy is asked. */
async function expectRefused(attempt: Promise<unknown>, policyCalls: unknown[]): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await attempt;
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('UNAUTHENTICATED');
    expect(policyCalls).toHaveLength(0);
    return;
  }
  throw new Error(`credential was accepted: ${JSON.stringify(outcome)}`);
}

describe('robot token attacks through the gateway pipeline', () => {
  it('accepts a genuine robot token (the baseline every attack below changes one thing of)', async () => {
    const { run, robot, robotCalls } = await setUp();
    const context = await run(`Bearer ${await robot()}`);
    expect(context.principal).toMatchObject({ id: robotId, actingUserId: creator, teamIds: [team1, team2] });
    expect(robotCalls).toHaveLength(1);
  });

  it('refuses alg none', async () => {
    const { run, robot, policyCalls } = await setUp();
    const [, payload] = (await robot()).split('.');
    await expectRefused(run(`Bearer ${b64({ alg: 'none', typ: 'robot+jwt', kid: 'k1' })}.${payload}.`), policyCalls);
    await expectRefused(run(`Bearer ${b64({ alg: 'none', typ: 'robot+jwt', kid: 'k1' })}.${payload}.AAAA`), policyCalls);
  });

  it('refuses HS256 signed with the public key (algorithm confusion)', async () => {
    const { run, robot, publicKey, jwk, policyCalls } = await setUp();
    const [, payload] = (await robot()).split('.');
    const header = b64({ alg: 'HS256', typ: 'robot+jwt', kid: 'k1' });
    for (const secret of [await exportSPKI(publicKey), JSON.stringify(jwk)]) {
      const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await expectRefused(run(`Bearer ${header}.${payload}.${signature}`), policyCalls);
    }
  });

  it('refuses an unknown kid and a token signed by another key under our kid', async () => {
    const { run, robot, policyCalls } = await setUp();
    await expectRefused(run(`Bearer ${await robot({ kid: 'k2' })}`), policyCalls);
    const other = await setUp();
    await expectRefused(run(`Bearer ${await other.robot()}`), policyCalls);
  });

  it('refuses an expired robot token', async () => {
    const { run, robot, policyCalls } = await setUp();
    await expectRefused(run(`Bearer ${await robot({}, { exp: Math.floor(Date.now() / 1000) - 10 })}`), policyCalls);
  });

  it('refuses an access token relabelled robot+jwt, and a robot token relabelled at+jwt', async () => {
    const { run, robot, access, policyCalls, robotCalls } = await setUp();
    const [, accessPayload, accessSignature] = (await access()).split('.');
    await expectRefused(
      run(`Bearer ${b64({ alg: 'ES256', kid: 'k1', typ: 'robot+jwt' })}.${accessPayload}.${accessSignature}`),
      policyCalls,
    );
    expect(robotCalls).toHaveLength(1);
    const [, robotPayload, robotSignature] = (await robot()).split('.');
    await expectRefused(run(`Bearer ${b64({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })}.${robotPayload}.${robotSignature}`), policyCalls);
    expect(robotCalls).toHaveLength(1);
  });

  it("refuses a robot's claims even when validly signed as at+jwt: the access verifier needs a role and a session", async () => {
    const { run, robot, policyCalls, robotCalls } = await setUp();
    await expectRefused(run(`Bearer ${await robot({ typ: 'at+jwt' }, { exp: Math.floor(Date.now() / 1000) + 300 })}`), policyCalls);
    expect(robotCalls).toHaveLength(0);
  });

  it('refuses tokens whose tenantId or teamIds were changed after signing', async () => {
    const { run, robot, policyCalls } = await setUp();
    const [header, payload, signature] = (await robot()).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
    for (const changed of [{ tenantId: tenantB }, { teamIds: [team1] }, { teamIds: [team1, team2, tenantB] }]) {
      await expectRefused(run(`Bearer ${header}.${b64({ ...claims, ...changed })}.${signature}`), policyCalls);
    }
    // Even signed, a tenantId the registration does not say is refused.
    await expectRefused(run(`Bearer ${await robot({}, { claims: { tenantId: tenantB } })}`, 'localhost'), policyCalls);
  });

  it('never allows and never answers 5xx for random bearer values or mutations of a robot token (property)', async () => {
    const { run, robot, policyCalls } = await setUp();
    const valid = await robot();
    const robotHeader = b64({ alg: 'ES256', kid: 'k1', typ: 'robot+jwt' });
    const refusedAs4xx = async (authorization: string) => {
      const error = await run(authorization).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(AppError);
      const status = httpStatusOf((error as AppError).code);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
    };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string().map((text) => `Bearer ${text}`),
          fc.uint8Array().map((bytes) => `Bearer ${Buffer.from(bytes).toString('latin1')}`),
          fc.tuple(fc.base64String(), fc.base64String()).map(([payload, signature]) => `Bearer ${robotHeader}.${payload}.${signature}`),
          fc
            .tuple(fc.uint8Array({ minLength: 1 }), fc.uint8Array({ minLength: 1 }))
            .map(
              ([payload, signature]) =>
                `Bearer ${robotHeader}.${Buffer.from(payload).toString('base64url')}.${Buffer.from(signature).toString('base64url')}`,
            ),
          fc.json().map((header) => `Bearer ${b64(header)}.${b64({ sub: robotId })}.c2ln`),
        ),
        refusedAs4xx,
      ),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(oneCharacterForgeries(valid), async (mutated) => {
        await refusedAs4xx(`Bearer ${mutated}`);
      }),
      { numRuns: 300 },
    );
    expect(policyCalls).toHaveLength(0);
  });
});
