import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { rejectDeepJson } from './json-depth.js';

const depthOf = (value: unknown): number =>
  typeof value === 'object' && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0;

describe('JSON depth limit', () => {
  it('passes bodies up to the limit and refuses deeper ones before parsing', () => {
    expect(() => rejectDeepJson(Buffer.from('{"a":[{"b":1}]}'), 3)).not.toThrow();
    expect(() => rejectDeepJson(Buffer.from('{"a":[{"b":[1]}]}'), 3)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => rejectDeepJson(Buffer.from('['.repeat(100_000)), 32)).toThrow(/nested too deeply/);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(() => rejectDeepJson(Buffer.from(JSON.stringify({ text: '[[[[{{{{"\\\\"]]' })), 1)).not.toThrow();
    expect(() => rejectDeepJson(Buffer.from(JSON.stringify(['\\"', [[1]]])), 2)).toThrow();
  });

  it('agrees with the parsed depth of any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 1, max: 8 }), (value, limit) => {
        const body = Buffer.from(JSON.stringify(value));
        const tooDeep = depthOf(value) > limit;
        if (tooDeep) expect(() => rejectDeepJson(body, limit)).toThrow();
        else expect(() => rejectDeepJson(body, limit)).not.toThrow();
      }),
    );
  });
});
