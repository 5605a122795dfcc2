import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { AppError } from '@portcullis/kit';

export const oauthProviderNames = ['google', 'github'] as const;
export type OAuthProviderName = (typeof oauthProviderNames)[number];

/** SHA-256 in unpadded base64url: the form of a browser binding and of a state id. */
const DIGEST_SHAPE = /^[A-Za-z0-9_-]{43}$/u;
const BASE64URL = /^[A-Za-z0-9_-]+$/u;
/** Far above any state this module signs (about 150 characters); longer input is refused unread. */
const STATE_MAX_LENGTH = 512;
const VERSION = 1;

/** A started sign-in, as the state parameter carries it. */
export interface StatePayload {
  provider: OAuthProviderName;
  /** Names the single-use record in Redis. */
  stateId: string;
  /** Unix seconds after which the state is refused. */
  expiresAt: number;
}

/** The state-HMAC key, derived (HKDF-SHA256) from AUTH_SIGNING_KEY_SECRET with its own label. */
export function deriveStateKey(secret: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'portcullis-auth oauth state', 32));
}

/** True for a browser binding (SHA-256 base64url of the gateway's cookie) or a state id. */
export function isDigestShaped(value: string): boolean {
  return DIGEST_SHAPE.test(value);
}

/** Constant-time equality of two strings (false, without comparing, when the lengths differ). */
export function sameString(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Every refusal of a state says only this; the log of the caller says why. */
export const invalidState = () => new AppError('UNAUTHENTICATED', 'the sign-in could not be verified; start it again');

export type StateRefusal = 'malformed' | 'signature' | 'provider' | 'expired';

export class StateRefused extends AppError {
  constructor(readonly reason: StateRefusal) {
    super('UNAUTHENTICATED', reason === 'expired' ? 'the sign-in has expired; start it again' : invalidState().message);
  }
}

function isPayload(value: unknown): value is { v: number; p: string; s: string; e: number } {
  if (typeof value !== 'object' || value === null) return false;
  const { v, p, s, e } = value as Record<string, unknown>;
  return v === VERSION && typeof p === 'string' && typeof s === 'string' && typeof e === 'number' && Number.isSafeInteger(e);
}

function isProviderName(value: string): value is OAuthProviderName {
  return (oauthProviderNames as readonly string[]).includes(value);
}

export interface StateSignerDeps {
  /** 32-byte HMAC key (deriveStateKey). */
  key: Buffer;
  now?: () => number;
}

/**
 * The OAuth `state` parameter: `base64url(JSON {v, p, s, e}) "." base64url(HMAC-SHA256)`, the
 * HMAC taken over the encoded payload AND the browser binding (SHA-256 of the gateway's
 * cookie). A state therefore verifies only in the browser that started the sign-in, only for
 * the provider it names, and only until it expires. It carries nothing secret; single use is
 * the Redis record's job.
 */
export function createStateSigner({ key, now = Date.now }: StateSignerDeps) {
  const mac = (encodedPayload: string, binding: string) =>
    createHmac('sha256', key).update(`${encodedPayload}.${binding}`).digest('base64url');

  return {
    sign({ provider, stateId, expiresAt }: StatePayload, binding: string): string {
      const encoded = Buffer.from(JSON.stringify({ v: VERSION, p: provider, s: stateId, e: expiresAt })).toString('base64url');
      return `${encoded}.${mac(encoded, binding)}`;
    },

    /** The payload of a state signed for this binding and provider, still valid; StateRefused otherwise. */
    verify(state: string, binding: string, provider: OAuthProviderName): StatePayload {
      if (state.length > STATE_MAX_LENGTH) throw new StateRefused('malformed');
      const parts = state.split('.');
      const [encoded, signature] = parts;
      if (parts.length !== 2 || encoded === undefined || signature === undefined) throw new StateRefused('malformed');
      if (!BASE64URL.test(encoded) || !DIGEST_SHAPE.test(signature)) throw new StateRefused('malformed');
      // Signature first: nothing from an unsigned payload is parsed.
      if (!sameString(mac(encoded, binding), signature)) throw new StateRefused('signature');
      let payload: unknown;
      try {
        payload = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
      } catch {
        throw new StateRefused('malformed');
      }
      if (!isPayload(payload) || !isProviderName(payload.p) || !DIGEST_SHAPE.test(payload.s)) throw new StateRefused('malformed');
      if (payload.p !== provider) throw new StateRefused('provider');
      if (payload.e * 1000 <= now()) throw new StateRefused('expired');
      return { provider: payload.p, stateId: payload.s, expiresAt: payload.e };
    },
  };
}

export type StateSigner = ReturnType<typeof createStateSigner>;
