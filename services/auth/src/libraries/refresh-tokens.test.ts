import { describe, expect, it } from '@jest/globals';
import { fakeClock, memoryRefreshTokenStore } from '../test-support/memory-stores.js';
import { generateRefreshToken, purgeExpiredRefreshTokens } from './refresh-tokens.js';

const DAY = 86_400;

describe('purgeExpiredRefreshTokens', () => {
  it('deletes only tokens expired longer ago than the retention, in batches until none is left', async () => {
    const clock = fakeClock();
    const { store, rows } = memoryRefreshTokenStore(clock);
    const token = (ttlSeconds: number) =>
      store.insert({ tokenHash: generateRefreshToken().tokenHash, familyId: 'f', sessionId: 's', userId: 'u', tenantId: 't' }, ttlSeconds);
    for (let i = 0; i < 7; i += 1) await token(DAY);
    await token(20 * DAY);
    clock.advance(10 * DAY * 1000);
    await token(DAY);

    // Seven expired nine days ago; the 20-day token and the fresh one stay.
    await expect(purgeExpiredRefreshTokens(store, { retainSeconds: 7 * DAY, batchSize: 3 })).resolves.toBe(7);
    expect(rows).toHaveLength(2);
    expect(rows.every((row) => row.expiresAt.getTime() > clock.now())).toBe(true);
    await expect(purgeExpiredRefreshTokens(store, { retainSeconds: 7 * DAY, batchSize: 3 })).resolves.toBe(0);
  });

  it('keeps a recently expired spent token, so presenting it still counts as reuse until the retention ends', async () => {
    const clock = fakeClock();
    const { store, rows } = memoryRefreshTokenStore(clock);
    await store.insert({ tokenHash: generateRefreshToken().tokenHash, familyId: 'f', sessionId: 's', userId: 'u', tenantId: 't' }, DAY);
    clock.advance(2 * DAY * 1000);
    await expect(purgeExpiredRefreshTokens(store, { retainSeconds: 7 * DAY })).resolves.toBe(0);
    expect(rows).toHaveLength(1);
  });

  it('stops after maxBatches so one run stays bounded', async () => {
    const clock = fakeClock();
    const { store, rows } = memoryRefreshTokenStore(clock);
    for (let i = 0; i < 10; i += 1) {
      await store.insert({ tokenHash: generateRefreshToken().tokenHash, familyId: 'f', sessionId: 's', userId: 'u', tenantId: 't' }, 60);
    }
    clock.advance(DAY * 1000);
    await expect(purgeExpiredRefreshTokens(store, { retainSeconds: 0, batchSize: 2, maxBatches: 3 })).resolves.toBe(6);
    expect(rows).toHaveLength(4);
  });
});
