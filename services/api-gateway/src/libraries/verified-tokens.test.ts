import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import type { AccessClaims } from './access-tokens.js';
import { createVerifiedTokenCache } from './verified-tokens.js';

const claims = (expiresAt: number): AccessClaims => ({
  userId: '00000000-0000-4000-8000-0000000000f1',
  tenantId: '00000000-0000-4000-8000-00000000000a',
  role: Role.USER,
  sessionId: 's1',
  expiresAt,
});

function setup({ expiresAt = 10_000, maxAgeMs = 5_000, maxEntries = 10 } = {}) {
  const clock = { now: 0 };
  const verified: string[] = [];
  const verify = createVerifiedTokenCache({
    verify: (token) => {
      verified.push(token);
      if (token.startsWith('bad')) return Promise.reject(new AppError('UNAUTHENTICATED', 'invalid or expired credential'));
      return Promise.resolve(claims(expiresAt));
    },
    maxAgeMs,
    maxEntries,
    now: () => clock.now,
  });
  return { verify, verified, clock };
}

describe('verified token cache', () => {
  it('verifies a token once and answers the same claims from then on', async () => {
    const { verify, verified } = setup();
    await expect(verify('t1')).resolves.toEqual(claims(10_000));
    await expect(verify('t1')).resolves.toEqual(claims(10_000));
    expect(verified).toEqual(['t1']);
  });

  it('never keeps a refusal', async () => {
    const { verify, verified } = setup();
    await expect(verify('bad')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(verify('bad')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(verified).toEqual(['bad', 'bad']);
  });

  it('verifies again once the token expired, even within the maximum age', async () => {
    const { verify, verified, clock } = setup({ expiresAt: 1_000, maxAgeMs: 5_000 });
    await verify('t1');
    clock.now = 999;
    await verify('t1');
    clock.now = 1_000;
    await verify('t1');
    expect(verified).toEqual(['t1', 't1']);
  });

  it('verifies again after the maximum age, even for a token that lives longer', async () => {
    const { verify, verified, clock } = setup({ expiresAt: 60_000, maxAgeMs: 5_000 });
    await verify('t1');
    clock.now = 5_000;
    await verify('t1');
    expect(verified).toEqual(['t1', 't1']);
  });

  it('keeps at most maxEntries tokens, dropping the least recently used', async () => {
    const { verify, verified } = setup({ maxEntries: 2 });
    await verify('a');
    await verify('b');
    await verify('a');
    await verify('c');
    await verify('a');
    await verify('b');
    expect(verified).toEqual(['a', 'b', 'c', 'b']);
  });
});
