import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import { createDecisionCache } from './decision-cache.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const alice = { kind: PrincipalKind.USER, id: '00000000-0000-4000-8000-0000000000f1', tenantId: tenantA, role: Role.USER };
const question = (over: Record<string, unknown> = {}) => ({
  principal: alice,
  tenantId: tenantA,
  assistantId: '',
  object: 'tools',
  action: 'invoke',
  ...over,
});

function setup({ ttlMs = 1_000, maxEntries = 100 } = {}) {
  const clock = { now: 0 };
  const state = { allowed: true, available: true, fail: false };
  let hold = false;
  let release: (() => void) | undefined;
  const asked: unknown[] = [];
  const cache = createDecisionCache({
    policy: {
      async check(request) {
        asked.push(request);
        if (hold) {
          hold = false;
          await new Promise<void>((resolve) => (release = resolve));
        }
        if (state.fail) throw new AppError('DEPENDENCY_UNAVAILABLE', 'policy down');
        return { $typeName: 'portcullis.policy.v1.CheckResponse', allowed: state.allowed, reason: state.allowed ? 'granted' : 'no rule' };
      },
    },
    ttlMs,
    maxEntries,
    isPolicyAvailable: () => state.available,
    now: () => clock.now,
  });
  /** The next answer waits until the returned function is called. */
  const holdNextAnswer = () => {
    hold = true;
    return () => release?.();
  };
  return { cache, clock, state, asked, holdNextAnswer };
}

describe('decision cache', () => {
  it('asks once per exact question within the bound, allow and deny alike', async () => {
    const { cache, asked, state } = setup();
    await expect(cache.check(question())).resolves.toMatchObject({ allowed: true, reason: 'granted' });
    await expect(cache.check(question())).resolves.toMatchObject({ allowed: true, reason: 'granted' });
    expect(asked).toHaveLength(1);
    state.allowed = false;
    await expect(cache.check(question({ action: 'manage' }))).resolves.toMatchObject({ allowed: false });
    await expect(cache.check(question({ action: 'manage' }))).resolves.toMatchObject({ allowed: false });
    expect(asked).toHaveLength(2);
  });

  it('never answers one question with another: assistant, capability, principal and teams are all part of it', async () => {
    const { cache, asked } = setup();
    await cache.check(question());
    await cache.check(question({ assistantId: '00000000-0000-4000-8000-0000000000a1' }));
    await cache.check(question({ object: 'devices' }));
    await cache.check(question({ principal: { ...alice, id: '00000000-0000-4000-8000-0000000000f2' } }));
    await cache.check(question({ principal: { ...alice, role: Role.OWNER } }));
    await cache.check(question({ principal: { ...alice, kind: PrincipalKind.ROBOT, actingUserId: alice.id, teamIds: ['t1'] } }));
    await cache.check(question({ principal: { ...alice, kind: PrincipalKind.ROBOT, actingUserId: alice.id, teamIds: ['t2'] } }));
    expect(asked).toHaveLength(7);
    // Team order does not make a new question.
    await cache.check(question({ principal: { ...alice, kind: PrincipalKind.ROBOT, actingUserId: alice.id, teamIds: ['t2', 't1'] } }));
    await cache.check(question({ principal: { ...alice, kind: PrincipalKind.ROBOT, actingUserId: alice.id, teamIds: ['t1', 't2'] } }));
    expect(asked).toHaveLength(8);
  });

  it('asks again once the bound has passed', async () => {
    const { cache, asked, clock } = setup({ ttlMs: 1_000 });
    await cache.check(question());
    clock.now = 999;
    await cache.check(question());
    clock.now = 1_000;
    await cache.check(question());
    expect(asked).toHaveLength(2);
  });

  it("drops a tenant's decisions at its change notice, and only that tenant's", async () => {
    const { cache, asked, state } = setup();
    await cache.check(question());
    await cache.check(question({ tenantId: tenantB, principal: { ...alice, tenantId: tenantB } }));
    state.allowed = false;
    cache.invalidate(tenantA);
    await expect(cache.check(question())).resolves.toMatchObject({ allowed: false });
    await expect(cache.check(question({ tenantId: tenantB, principal: { ...alice, tenantId: tenantB } }))).resolves.toMatchObject({
      allowed: true,
    });
    expect(asked).toHaveLength(3);
    cache.reset();
    await cache.check(question({ tenantId: tenantB, principal: { ...alice, tenantId: tenantB } }));
    expect(asked).toHaveLength(4);
  });

  it('does not keep an answer that was in flight while its tenant changed', async () => {
    const { cache, asked, holdNextAnswer } = setup();
    const release = holdNextAnswer();
    const pending = cache.check(question());
    cache.invalidate(tenantA);
    release();
    await expect(pending).resolves.toMatchObject({ allowed: true });
    await cache.check(question());
    expect(asked).toHaveLength(2);
  });

  it('keeps nothing of a tenant for a grace after its notice: another policy replica may still answer from the old rules', async () => {
    const { cache, asked, clock } = setup();
    cache.invalidate(tenantA);
    clock.now = 500;
    await cache.check(question());
    await cache.check(question());
    expect(asked).toHaveLength(2);
    clock.now = 1_001;
    await cache.check(question());
    await cache.check(question());
    expect(asked).toHaveLength(3);
    // Other tenants were never held back.
    await cache.check(question({ tenantId: tenantB, principal: { ...alice, tenantId: tenantB } }));
    await cache.check(question({ tenantId: tenantB, principal: { ...alice, tenantId: tenantB } }));
    expect(asked).toHaveLength(4);
  });

  it('serves nothing while the policy service is unreachable, so an outage denies', async () => {
    const { cache, asked, state } = setup();
    await cache.check(question());
    state.available = false;
    state.fail = true;
    await expect(cache.check(question())).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(asked).toHaveLength(2);
    state.available = true;
    state.fail = false;
    await expect(cache.check(question())).resolves.toMatchObject({ allowed: true });
  });

  it('never keeps a failure, and stays within its size bound', async () => {
    const { cache, asked, state } = setup({ maxEntries: 2 });
    state.fail = true;
    await expect(cache.check(question())).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    state.fail = false;
    await cache.check(question());
    expect(asked).toHaveLength(2);
    await cache.check(question({ object: 'a' }));
    await cache.check(question({ object: 'b' }));
    expect(cache.size()).toBe(2);
  });
});
