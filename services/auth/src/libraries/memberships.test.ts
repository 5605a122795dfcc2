import { timestampFromDate, timestampFromMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import { madeInMembership, MEMBERSHIP_CLOCK_TOLERANCE_MS, membershipSince, type TenantDirectory } from './memberships.js';

const tenant = '00000000-0000-4000-8000-00000000000a';
const person = '00000000-0000-4000-8000-0000000000f1';
const since = new Date('2026-01-02T03:04:05.678Z');

/** A tenant-registry whose one answer (or failure) the test chooses. */
function answering(answer: () => unknown) {
  const logs: unknown[] = [];
  const tenants: Pick<TenantDirectory, 'getMembership'> = {
    getMembership: () => Promise.resolve().then(() => answer() as never),
  };
  const lookUp = () => membershipSince(tenants, tenant, person, { warn: (...args: unknown[]) => logs.push(args) });
  return { lookUp, logs };
}

const membership = (extra: Record<string, unknown> = {}) => ({
  membership: { tenantId: tenant, userId: person, role: Role.ADMIN, memberSince: timestampFromDate(since), ...extra },
});

describe('membershipSince', () => {
  it('gives the role and when the membership began', async () => {
    await expect(answering(() => membership()).lookUp()).resolves.toEqual({ role: 'admin', since });
  });

  it('rounds a member_since in microseconds to the millisecond', async () => {
    const microseconds = { seconds: BigInt(Math.floor(since.getTime() / 1000)), nanos: 678_501_000 };
    const answer = await answering(() => membership({ memberSince: { ...timestampFromMs(0), ...microseconds } })).lookUp();
    expect(answer?.since.getTime()).toBe(since.getTime() + 1);
  });

  it('is undefined for NOT_FOUND, an unknown role, or a membership of another person or tenant', async () => {
    const cases = [
      () => {
        throw new AppError('NOT_FOUND', 'membership not found');
      },
      () => ({ membership: undefined }),
      () => membership({ role: Role.UNSPECIFIED }),
      () => membership({ userId: '00000000-0000-4000-8000-0000000000f2' }),
      () => membership({ tenantId: '00000000-0000-4000-8000-00000000000b' }),
    ];
    for (const answer of cases) await expect(answering(answer).lookUp()).resolves.toBeUndefined();
  });

  it('never passes an answer without member_since: DEPENDENCY_UNAVAILABLE, logged', async () => {
    const { lookUp, logs } = answering(() => membership({ memberSince: undefined }));
    await expect(lookUp()).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(JSON.stringify(logs)).toContain('without member_since');
  });

  it("passes tenant-registry's other failures through", async () => {
    for (const code of ['DEPENDENCY_UNAVAILABLE', 'TENANT_SUSPENDED', 'PERMISSION_DENIED'] as const) {
      const { lookUp } = answering(() => {
        throw new AppError(code, 'no');
      });
      await expect(lookUp()).rejects.toMatchObject({ code });
    }
  });
});

describe('madeInMembership', () => {
  const current = { role: 'user' as const, since };
  it('accepts a credential made since the membership began, or within the clock tolerance before it', () => {
    expect(madeInMembership(since, current)).toBe(true);
    expect(madeInMembership(new Date(since.getTime() + 86_400_000), current)).toBe(true);
    expect(madeInMembership(new Date(since.getTime() - MEMBERSHIP_CLOCK_TOLERANCE_MS), current)).toBe(true);
  });

  it('refuses a credential made earlier, in a membership that has ended', () => {
    expect(madeInMembership(new Date(since.getTime() - MEMBERSHIP_CLOCK_TOLERANCE_MS - 1), current)).toBe(false);
    expect(madeInMembership(new Date(since.getTime() - 30 * 86_400_000), current)).toBe(false);
  });
});
