import { AppError, isUuid } from '@portcullis/kit';
import { decodeProtectedHeader, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { SIGNING_ALG, type PrivateKey, type SigningKeys } from './signing-keys.js';

/** The JWT media type of a robot token, so it can never pass for an access token (`at+jwt`) or the reverse. */
export const ROBOT_TOKEN_TYPE = 'robot+jwt';
export const MAX_ROBOT_NAME_LENGTH = 100;
export const MAX_ROBOT_TEAMS = 20;
/** Anything longer is not a token this service issued (a robot token is well under 2 KB). */
const MAX_TOKEN_LENGTH = 8_192;
/** Signing key ids are RFC 7638 thumbprints: SHA-256, base64url. */
const KID = /^[A-Za-z0-9_-]{43}$/;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The one answer for every problem with a robot token itself. */
export const invalidRobotToken = () => new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token');

/** What a robot token says, once its signature, type, issuer, audience and expiry were checked. */
export interface RobotTokenClaims {
  robotId: string;
  tenantId: string;
  robotName: string;
  creatorId: string;
  teamIds: string[];
  /** Seconds since the epoch; undefined when the token does not expire. */
  expiresAt: number | undefined;
  /** The signing key that signed it. */
  kid: string;
}

export interface RobotTokenSubject {
  robotId: string;
  tenantId: string;
  robotName: string;
  creatorId: string;
  teamIds: readonly string[];
  /** Whole seconds; undefined: the token never expires. */
  expiresAt: Date | undefined;
}

/**
 * Public keys by kid, whether or not the key is still published in the JWKS: a robot token
 * without expiry outlives every rotation, and retirement only ends a key's publication and
 * signing, never its row (see the README, Robots).
 */
export interface VerificationKeyStore {
  findPublicKey(kid: string): Promise<{ alg: string; publicJwk: JWK } | undefined>;
}

export interface RobotTokensDeps {
  signer: Pick<SigningKeys, 'currentSigner'>;
  verificationKeys: VerificationKeyStore;
  issuer: string;
  audience: string;
  /** How long an imported public key is trusted before its row is read again. */
  keyRefreshMs: number;
  now?: () => number;
}

type PublicKey = Exclude<Awaited<ReturnType<typeof importJWK>>, Uint8Array>;

/** A UUID as this service writes it (lowercase); anything else was not issued here. */
const isCanonicalUuid = (value: unknown): value is string => typeof value === 'string' && isUuid(value) && value === value.toLowerCase();

const isTeamList = (value: unknown): value is string[] =>
  Array.isArray(value) &&
  value.length >= 1 &&
  value.length <= MAX_ROBOT_TEAMS &&
  value.every(isCanonicalUuid) &&
  new Set(value).size === value.length;

/**
 * Robot tokens: ES256 JWTs signed with auth's current signing key (same key ring and JWKS as
 * access tokens) but typed `robot+jwt`. Claims: `sub` = `jti` = the robot id, `robotName`,
 * `creatorId`, `tenantId`, `teamIds`, `iat`, and `exp` only when an expiry was chosen.
 */
export function createRobotTokens({ signer, verificationKeys, issuer, audience, keyRefreshMs, now = Date.now }: RobotTokensDeps) {
  const publicKeys = new Map<string, { loadedAt: number; key: Promise<PublicKey | undefined> }>();

  /** The public key of `kid`, or undefined when no ES256 key of that id exists. Storage errors pass through. */
  function publicKeyOf(kid: string): Promise<PublicKey | undefined> {
    const cached = publicKeys.get(kid);
    if (cached && now() - cached.loadedAt < keyRefreshMs) return cached.key;
    const key = verificationKeys.findPublicKey(kid).then(async (row) => {
      if (row?.alg !== SIGNING_ALG) return undefined;
      const imported = await importJWK({ ...row.publicJwk, alg: SIGNING_ALG }, SIGNING_ALG);
      return imported instanceof Uint8Array ? undefined : imported;
    });
    // Only keys that exist are remembered: a flood of unknown kids must not fill the map.
    publicKeys.set(kid, { loadedAt: now(), key });
    key.then(
      (found) => {
        if (!found) publicKeys.delete(kid);
      },
      () => publicKeys.delete(kid),
    );
    return key;
  }

  return {
    async issue(subject: RobotTokenSubject): Promise<{ token: string; kid: string }> {
      const { kid, privateKey }: { kid: string; privateKey: PrivateKey } = await signer.currentSigner();
      const jwt = new SignJWT({
        robotName: subject.robotName,
        creatorId: subject.creatorId,
        tenantId: subject.tenantId,
        teamIds: [...subject.teamIds],
      })
        .setProtectedHeader({ alg: SIGNING_ALG, kid, typ: ROBOT_TOKEN_TYPE })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(subject.robotId)
        .setJti(subject.robotId)
        .setIssuedAt(Math.floor(now() / 1000));
      if (subject.expiresAt) jwt.setExpirationTime(Math.floor(subject.expiresAt.getTime() / 1000));
      return { token: await jwt.sign(privateKey), kid };
    },

    /**
     * Checks the signature (ES256 only, by a key auth holds), `typ`, `iss`, `aud`, `exp` when
     * present, and the shape of every claim. Every failure is the same UNAUTHENTICATED; only a
     * failing key store passes its own error through (the token is then neither accepted nor
     * blamed).
     */
    async verify(token: string): Promise<RobotTokenClaims> {
      if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) throw invalidRobotToken();
      let kid: unknown;
      try {
        ({ kid } = decodeProtectedHeader(token));
      } catch {
        throw invalidRobotToken();
      }
      if (typeof kid !== 'string' || !KID.test(kid)) throw invalidRobotToken();
      const key = await publicKeyOf(kid);
      if (!key) throw invalidRobotToken();

      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: [SIGNING_ALG],
          typ: ROBOT_TOKEN_TYPE,
          issuer,
          audience,
          requiredClaims: ['sub', 'jti', 'iat'],
          currentDate: new Date(now()),
        }));
      } catch {
        throw invalidRobotToken();
      }
      const { sub, jti, tenantId, robotName, creatorId, teamIds, exp } = payload;
      if (
        !isCanonicalUuid(sub) ||
        jti !== sub ||
        !isCanonicalUuid(tenantId) ||
        !isCanonicalUuid(creatorId) ||
        typeof robotName !== 'string' ||
        robotName.length === 0 ||
        robotName.length > MAX_ROBOT_NAME_LENGTH ||
        !isTeamList(teamIds) ||
        (exp !== undefined && (typeof exp !== 'number' || !Number.isInteger(exp)))
      ) {
        throw invalidRobotToken();
      }
      return {
        robotId: sub,
        tenantId,
        robotName,
        creatorId,
        teamIds,
        expiresAt: exp,
        kid,
      };
    },
  };
}

export type RobotTokens = ReturnType<typeof createRobotTokens>;
