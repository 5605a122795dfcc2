import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import { defaultRateLimits, type RateLimits } from '../libraries/rate-limit-config.js';
import type { Bucket } from '../libraries/rate-limiter.js';
import { requestInfo, roomyRateLimit } from '../test-support/pipeline-fakes.js';
import type { DecisionRecord } from './audit-decision.js';
import { bucketsOf, createRateLimit } from './rate-limit.js';
import type { AuthenticatedContext, Credential } from './types.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const alice = '00000000-0000-4000-8000-0000000000f1';
const capability = { object: 'tools', action: 'invoke' };

const contextOf = (credential: Credential, plan = 'pro'): AuthenticatedContext => {
  const principal: Principal = {
    $typeName: 'portcullis.common.v1.Principal',
    kind: credential.kind === 'robot' ? PrincipalKind.ROBOT : credential.kind === 'api_key' ? PrincipalKind.API_KEY : PrincipalKind.USER,
    id: credential.kind === 'robot' ? credential.robotId : credential.kind === 'api_key' ? credential.keyId : alice,
    tenantId: tenantA,
    role: Role.USER,
    actingUserId: '',
    teamIds: [],
  };
  return {
    request: requestInfo({ clientIp: '198.51.100.9' }),
    target: { tenantId: tenantA, tenantName: 'Alpha', plan, assistantId: '' },
    principal,
    credential,
  } as AuthenticatedContext;
};

const person: Credential = { kind: 'access_token', sessionId: 's1', via: 'header' };
const key: Credential = { kind: 'api_key', keyId: 'k1', keyKind: 'tenant', userId: '', createdBy: alice, scopes: [] };
const robot: Credential = { kind: 'robot', robotId: 'r1', creatorId: alice, teamIds: [] };

describe('rate limit step (3)', () => {
  it("spends from the tenant's bucket and the principal's, sized by the tenant's plan", () => {
    const pro = defaultRateLimits.plans['pro'];
    const named = (buckets: Bucket[]) => buckets.map((b) => [b.name, b.key, b.window]);
    expect(named(bucketsOf(contextOf(person), { capability }, defaultRateLimits))).toEqual([
      ['tenant', tenantA, pro?.tenant],
      ['user', `${tenantA}:${alice}`, pro?.user],
    ]);
    expect(named(bucketsOf(contextOf(key), { capability }, defaultRateLimits))).toEqual([
      ['tenant', tenantA, pro?.tenant],
      ['api-key', 'k1', pro?.apiKey],
    ]);
    expect(named(bucketsOf(contextOf(robot), { capability }, defaultRateLimits))).toEqual([
      ['tenant', tenantA, pro?.tenant],
      ['robot', 'r1', pro?.robot],
    ]);
  });

  it("uses the default plan's limits for a plan without its own", () => {
    const [tenant] = bucketsOf(contextOf(person, 'unheard-of'), { capability }, defaultRateLimits);
    expect(tenant?.window).toEqual(defaultRateLimits.plans['free']?.tenant);
  });

  it('adds per-person and per-address buckets on a sensitive route', () => {
    const buckets = bucketsOf(contextOf(person), { capability, sensitive: 'activationCode' }, defaultRateLimits);
    expect(buckets.slice(2)).toEqual([
      { name: 'activationCode:principal', key: `${tenantA}:${alice}`, window: defaultRateLimits.sensitive.activationCode },
      { name: 'activationCode:address', key: '198.51.100.9', window: defaultRateLimits.sensitive.activationCode },
    ]);
  });

  it('passes the state on, and audits a refusal or a failing limiter as a denial', async () => {
    const audited: DecisionRecord[] = [];
    const outcomes: (AppError | undefined)[] = [
      undefined,
      new AppError('RATE_LIMITED', 'too many'),
      new AppError('DEPENDENCY_UNAVAILABLE', 'down'),
    ];
    const step = createRateLimit({
      consumeRateLimit: Object.assign(
        () => {
          const next = outcomes.shift();
          return next ? Promise.reject(next) : Promise.resolve(roomyRateLimit);
        },
        { refund: () => Promise.resolve() },
      ),
      rateLimits: defaultRateLimits satisfies RateLimits,
      auditDecision: (record) => {
        audited.push(record);
        return Promise.resolve();
      },
    });
    await expect(step(contextOf(person), { capability })).resolves.toMatchObject({ rateLimit: roomyRateLimit });
    await expect(step(contextOf(person), { capability })).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(step(contextOf(person), { capability })).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(audited.map((r) => [r.allowed, r.reason, r.capability])).toEqual([
      [false, 'rate limit exceeded', capability],
      [false, 'rate limiter unavailable', capability],
    ]);
  });
});
