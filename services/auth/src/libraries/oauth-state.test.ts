import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import fc from 'fast-check';
import { fakeClock } from '../test-support/memory-stores.js';
import { createStateSigner, deriveStateKey, StateRefused, type StatePayload } from './oauth-state.js';

const binding = (label: string) => createHash('sha256').update(label).digest('base64url');
const stateId = randomBytes(32).toString('base64url');

function setup() {
  const clock = fakeClock();
  const signer = createStateSigner({ key: deriveStateKey(randomBytes(32)), now: clock.now });
  const payload: StatePayload = { provider: 'google', stateId, expiresAt: Math.floor(clock.now() / 1000) + 600 };
  return { clock, signer, payload, state: signer.sign(payload, binding('browser-a')) };
}

function refusal(run: () => unknown): StateRefused {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(StateRefused);
    expect(error).toMatchObject({ code: 'UNAUTHENTICATED' });
    return error as StateRefused;
  }
  throw new Error('expected the state to be refused');
}

/** Flips one character of a base64url string (never to the same one). */
function flip(text: string, index: number): string {
  const char = text[index] === 'A' ? 'B' : 'A';
  return `${text.slice(0, index)}${char}${text.slice(index + 1)}`;
}

describe('oauth state', () => {
  it('verifies in the browser, for the provider and within the time it was signed for', () => {
    const { signer, payload, state } = setup();
    expect(signer.verify(state, binding('browser-a'), 'google')).toEqual(payload);
  });

  it('carries no secret: only version, provider, state id and expiry', () => {
    const { state } = setup();
    const [encoded] = state.split('.');
    expect(JSON.parse(Buffer.from(encoded ?? '', 'base64url').toString())).toEqual({
      v: 1,
      p: 'google',
      s: stateId,
      e: expect.any(Number),
    });
  });

  it('refuses the state in another browser (another binding)', () => {
    const { signer, state } = setup();
    expect(refusal(() => signer.verify(state, binding('browser-b'), 'google')).reason).toBe('signature');
  });

  it('refuses a tampered payload or signature', () => {
    const { signer, state } = setup();
    const [encoded = '', signature = ''] = state.split('.');
    for (let index = 0; index < encoded.length; index += 7) {
      expect(refusal(() => signer.verify(`${flip(encoded, index)}.${signature}`, binding('browser-a'), 'google')).reason).toMatch(
        /signature|malformed/,
      );
    }
    expect(refusal(() => signer.verify(`${encoded}.${flip(signature, 5)}`, binding('browser-a'), 'google')).reason).toBe('signature');
  });

  it('refuses a payload rewritten to another provider, even with a fresh signature under another key', () => {
    const { signer, payload } = setup();
    const [, signature] = signer.sign(payload, binding('browser-a')).split('.');
    const rewritten = Buffer.from(JSON.stringify({ v: 1, p: 'github', s: stateId, e: payload.expiresAt })).toString('base64url');
    expect(refusal(() => signer.verify(`${rewritten}.${signature ?? ''}`, binding('browser-a'), 'github')).reason).toBe('signature');
    const forger = createStateSigner({ key: deriveStateKey(randomBytes(32)) });
    const forged = forger.sign({ ...payload, provider: 'github' }, binding('browser-a'));
    expect(refusal(() => signer.verify(forged, binding('browser-a'), 'github')).reason).toBe('signature');
  });

  it('refuses a genuine state presented to the other provider callback', () => {
    const { signer, state } = setup();
    expect(refusal(() => signer.verify(state, binding('browser-a'), 'github')).reason).toBe('provider');
  });

  it('refuses an expired state, with a message that says so', () => {
    const { signer, state, clock } = setup();
    clock.advance(599_000);
    expect(signer.verify(state, binding('browser-a'), 'google').stateId).toBe(stateId);
    clock.advance(1_000);
    const error = refusal(() => signer.verify(state, binding('browser-a'), 'google'));
    expect(error.reason).toBe('expired');
    expect(error.message).toContain('expired');
  });

  it('refuses malformed states before computing anything from them', () => {
    const { signer } = setup();
    for (const malformed of ['', '.', 'abc', 'a.b.c', `${'A'.repeat(600)}.${'B'.repeat(43)}`, `abc.${'B'.repeat(42)}`, 'ab$.cd']) {
      expect(refusal(() => signer.verify(malformed, binding('browser-a'), 'google')).reason).toMatch(/malformed/);
    }
  });

  it('derives a key distinct from the secret and from other derivations', () => {
    const secret = randomBytes(32);
    expect(deriveStateKey(secret)).toHaveLength(32);
    expect(deriveStateKey(secret).equals(secret)).toBe(false);
    expect(deriveStateKey(secret).equals(deriveStateKey(randomBytes(32)))).toBe(false);
  });

  it('refuses every random input with UNAUTHENTICATED and nothing else (property)', () => {
    const { signer } = setup();
    fc.assert(
      fc.property(fc.string({ maxLength: 700 }), fc.string({ maxLength: 60 }), (state, presented) => {
        try {
          signer.verify(state, presented, 'google');
          return false;
        } catch (error) {
          return error instanceof AppError && error.code === 'UNAUTHENTICATED';
        }
      }),
    );
  });
});
