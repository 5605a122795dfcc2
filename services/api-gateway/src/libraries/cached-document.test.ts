import { describe, expect, it } from '@jest/globals';
import { cachedDocument } from './cached-document.js';

describe('cached document', () => {
  it('fetches once per interval, shares a fetch in flight, and keeps no failure', async () => {
    const clock = { now: 0 };
    const outcomes: (string | Error)[] = ['v1', new Error('down'), 'v2'];
    let fetches = 0;
    const get = cachedDocument(
      () => {
        fetches += 1;
        const next = outcomes.shift();
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(next ?? 'none');
      },
      60_000,
      () => clock.now,
    );
    await expect(Promise.all([get(), get(), get()])).resolves.toEqual(['v1', 'v1', 'v1']);
    clock.now = 59_999;
    await expect(get()).resolves.toBe('v1');
    expect(fetches).toBe(1);
    clock.now = 60_000;
    await expect(get()).rejects.toThrow('down');
    await expect(get()).resolves.toBe('v2');
    expect(fetches).toBe(3);
  });
});
