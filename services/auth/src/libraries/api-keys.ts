import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { AppError, capabilityNamePattern, requireText, roleOf, type AuditPublisher, type Logger, type RoleName } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, type Principal } from '@portcullis/proto/common';
import { madeInMembership, membershipSince, signedInActor, type TenantDirectory } from './memberships.js';

/**
 * API keys: `pck_<id>_<secret>`. The id (16 characters of [a-z0-9]) is public and names the
 * row; the secret (32 random bytes, base64url) is stored only as its SHA-256. A 256-bit random
 * secret needs no slow hash: nothing can be guessed from the digest.
 */
export const API_KEY_PREFIX = 'pck_';
const KEY_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const KEY_ID_LENGTH = 16;
const API_KEY = /^pck_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;
const MAX_SCOPES = 64;
export const MAX_GRACE_SECONDS = 7 * 86_400;
/** last_used_at is written at most once per this interval per key. */
export const LAST_USED_INTERVAL_MS = 60_000;

export type ApiKeyKind = 'tenant' | 'user';

export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  kind: ApiKeyKind;
  userId: string | null;
  createdBy: string;
  name: string;
  scopes: string[];
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  graceUntil: Date | null;
  rotatedFrom: string | null;
}

export interface NewApiKey {
  id: string;
  tenantId: string;
  kind: ApiKeyKind;
  userId: string | null;
  createdBy: string;
  name: string;
  secretHash: string;
  scopes: string[];
  createdAt: Date;
  expiresAt: Date | null;
  rotatedFrom: string | null;
}

/** What verification reads, before the tenant is known. */
export interface ApiKeyLookup {
  id: string;
  tenantId: string;
  kind: ApiKeyKind;
  userId: string | null;
  createdBy: string;
  secretHash: string;
  scopes: string[];
  /** When the key was made (by creation or rotation). */
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  graceUntil: Date | null;
}

export interface ApiKeyStore {
  insert(key: NewApiKey): Promise<ApiKeyRecord>;
  list(tenantId: string): Promise<ApiKeyRecord[]>;
  get(tenantId: string, id: string): Promise<ApiKeyRecord | undefined>;
  /** Revokes the key and, if still in its grace period, the key it replaced. False when nothing was live. */
  revoke(tenantId: string, id: string, at: Date): Promise<boolean>;
  /**
   * Atomically: gives the old key its grace end (only if it is still live and was never
   * rotated) and inserts its successor. Undefined when the old key was not in that state.
   */
  rotate(tenantId: string, oldId: string, graceUntil: Date, successor: NewApiKey): Promise<ApiKeyRecord | undefined>;
  findForVerification(id: string): Promise<ApiKeyLookup | undefined>;
  /** Sets last_used_at = at unless it was set less than minIntervalMs before. */
  touch(tenantId: string, id: string, at: Date, minIntervalMs: number): Promise<void>;
}

export interface VerifiedApiKey {
  keyId: string;
  tenantId: string;
  kind: ApiKeyKind;
  userId: string | null;
  /** Who created (or last rotated) the key; a tenant key never acts beyond this user's current rights. */
  createdBy: string;
  scopes: string[];
}

const invalidKey = () => new AppError('UNAUTHENTICATED', 'invalid, expired or revoked API key');
const noSuchKey = () => new AppError('NOT_FOUND', 'no such API key');
const personGone = () => new AppError('UNAUTHENTICATED', 'the person behind this API key no longer belongs to this tenant');

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** Splits a presented key into id and secret; anything malformed is UNAUTHENTICATED. */
export function parseApiKey(key: string): { id: string; secret: string } {
  const match = API_KEY.exec(key);
  if (!match?.[1] || !match[2]) throw invalidKey();
  return { id: match[1], secret: match[2] };
}

function newKeyMaterial(): { id: string; secret: string; key: string } {
  let id = '';
  for (let i = 0; i < KEY_ID_LENGTH; i += 1) id += KEY_ID_ALPHABET[randomInt(KEY_ID_ALPHABET.length)] ?? '';
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, key: `${API_KEY_PREFIX}${id}_${secret}` };
}

/** Capabilities `object:action`, deduplicated and sorted; 1–64 of them. */
export function normaliseScopes(scopes: readonly string[]): string[] {
  if (scopes.length === 0)
    throw new AppError('INVALID_ARGUMENT', 'scopes: at least one scope is required', { details: { field: 'scopes' } });
  const unique = [...new Set(scopes.map((scope) => scope.trim()))].sort();
  if (unique.length > MAX_SCOPES) {
    throw new AppError('INVALID_ARGUMENT', `scopes: at most ${MAX_SCOPES} scopes`, { details: { field: 'scopes' } });
  }
  for (const scope of unique) {
    if (!capabilityNamePattern.test(scope)) {
      throw new AppError('INVALID_ARGUMENT', 'scopes: each scope is a capability object:action', { details: { field: 'scopes' } });
    }
  }
  return unique;
}

export interface ApiKeysDeps {
  store: ApiKeyStore;
  tenants: Pick<TenantDirectory, 'getMembership'>;
  /** Where creation, rotation and revocation are recorded (`apikey.*`), never a key or its secret. */
  audit: Pick<AuditPublisher, 'publish'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  now?: () => number;
}

/** The audit event kinds of API keys and the action each records. */
const keyActions = { 'apikey.created': 'create', 'apikey.rotated': 'rotate', 'apikey.revoked': 'revoke' } as const;

/** What the audit trail keeps of a key: its public id and prefix, kind, scopes and times, never the secret. */
function keyAttributes(key: ApiKeyRecord): Record<string, string> {
  return {
    key_id: key.id,
    key_prefix: `${API_KEY_PREFIX}${key.id}`,
    key_kind: key.kind,
    name: key.name,
    scopes: key.scopes.join(' '),
    expires_at: key.expiresAt?.toISOString() ?? '',
    ...(key.userId === null ? {} : { user_id: key.userId }),
  };
}

export interface CreateApiKeyInput {
  tenantId: string;
  actor: Principal | undefined;
  kind: ApiKeyKind;
  name: string;
  scopes: readonly string[];
  expiresAt: Date | undefined;
}

export function createApiKeys({ store, tenants, audit, logger, now = Date.now }: ApiKeysDeps) {
  const actorOf = (tenantIdInput: string, actor: Principal | undefined) => signedInActor(tenants, tenantIdInput, actor, 'API keys');

  /** Records a change the actor made, once it is stored. */
  const record = (
    kind: keyof typeof keyActions,
    actor: { tenantId: string; userId: string; role: RoleName },
    attributes: Record<string, string>,
  ) =>
    audit.publish({
      tenantId: actor.tenantId,
      kind,
      principal: { kind: PrincipalKind.USER, id: actor.userId, tenantId: actor.tenantId, role: roleOf(actor.role) },
      object: 'apikeys',
      action: keyActions[kind],
      outcome: Outcome.SUCCESS,
      attributes,
    });

  const isManager = (role: RoleName) => role === 'owner' || role === 'admin';
  const visibleTo = (key: ApiKeyRecord, userId: string, role: RoleName) =>
    isManager(role) || (key.kind === 'user' && key.userId === userId);

  /**
   * Rotation hands the caller a new secret that acts exactly like the old key, so only someone
   * who could have made that key may rotate it: a user key only by its own user (managers may
   * revoke it, never take it over); a tenant key by an owner, or by the admin who created it.
   */
  function assertMayRotate(key: ApiKeyRecord, userId: string, role: RoleName): void {
    const allowed = key.kind === 'user' ? key.userId === userId : role === 'owner' || (role === 'admin' && key.createdBy === userId);
    if (!allowed) {
      throw new AppError(
        'PERMISSION_DENIED',
        key.kind === 'user'
          ? "only the key's own user may rotate a user key"
          : 'only an owner or the admin who created it may rotate a tenant key',
      );
    }
  }

  async function visibleKey(tenantId: string, keyId: string, userId: string, role: RoleName): Promise<ApiKeyRecord> {
    if (!/^[a-z0-9]{16}$/.test(keyId)) throw noSuchKey();
    const key = await store.get(tenantId, keyId);
    // Keys the actor may not manage are answered like unknown ones.
    if (!key || !visibleTo(key, userId, role)) throw noSuchKey();
    return key;
  }

  return {
    async create(input: CreateApiKeyInput): Promise<{ apiKey: ApiKeyRecord; key: string }> {
      const { tenantId, userId, role } = await actorOf(input.tenantId, input.actor);
      const name = requireText(input.name, 'name', 100);
      const scopes = normaliseScopes(input.scopes);
      const createdAt = new Date(now());
      if (input.expiresAt && input.expiresAt.getTime() <= createdAt.getTime()) {
        throw new AppError('INVALID_ARGUMENT', 'expires_at must be in the future', { details: { field: 'expires_at' } });
      }
      if (input.kind === 'tenant' && !isManager(role)) {
        throw new AppError('PERMISSION_DENIED', 'only owners and admins create tenant API keys');
      }
      const material = newKeyMaterial();
      const apiKey = await store.insert({
        id: material.id,
        tenantId,
        kind: input.kind,
        userId: input.kind === 'user' ? userId : null,
        createdBy: userId,
        name,
        secretHash: hashSecret(material.secret),
        scopes,
        createdAt,
        expiresAt: input.expiresAt ?? null,
        rotatedFrom: null,
      });
      logger.info({ tenantId, keyId: apiKey.id, kind: apiKey.kind, createdBy: userId }, 'API key created');
      // Without its record the key is not handed out: nobody ever holds its secret.
      await record('apikey.created', { tenantId, userId, role }, keyAttributes(apiKey));
      return { apiKey, key: material.key };
    },

    async list(tenantIdInput: string, actor: Principal | undefined): Promise<ApiKeyRecord[]> {
      const { tenantId, userId, role } = await actorOf(tenantIdInput, actor);
      return (await store.list(tenantId)).filter((key) => visibleTo(key, userId, role));
    },

    async revoke(tenantIdInput: string, actor: Principal | undefined, keyId: string): Promise<void> {
      const { tenantId, userId, role } = await actorOf(tenantIdInput, actor);
      const key = await visibleKey(tenantId, keyId, userId, role);
      const revoked = await store.revoke(tenantId, keyId, new Date(now()));
      logger.info({ tenantId, keyId, by: userId, revoked }, 'API key revoked');
      // Revoking a dead key changes nothing and records nothing.
      if (revoked) await record('apikey.revoked', { tenantId, userId, role }, keyAttributes(key));
    },

    async rotate(
      tenantIdInput: string,
      actor: Principal | undefined,
      keyId: string,
      graceSeconds: number,
    ): Promise<{ apiKey: ApiKeyRecord; key: string }> {
      const { tenantId, userId, role } = await actorOf(tenantIdInput, actor);
      if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
        throw new AppError('INVALID_ARGUMENT', `grace_seconds must be an integer from 0 to ${MAX_GRACE_SECONDS}`, {
          details: { field: 'grace_seconds' },
        });
      }
      const old = await visibleKey(tenantId, keyId, userId, role);
      assertMayRotate(old, userId, role);
      const at = now();
      if (old.revokedAt || old.graceUntil || (old.expiresAt && old.expiresAt.getTime() <= at)) {
        throw new AppError('FAILED_PRECONDITION', 'only a live key that was never rotated can be rotated');
      }
      const material = newKeyMaterial();
      const apiKey = await store.rotate(tenantId, old.id, new Date(at + graceSeconds * 1000), {
        id: material.id,
        tenantId,
        kind: old.kind,
        userId: old.userId,
        createdBy: userId,
        name: old.name,
        secretHash: hashSecret(material.secret),
        scopes: old.scopes,
        createdAt: new Date(at),
        expiresAt: old.expiresAt,
        rotatedFrom: old.id,
      });
      if (!apiKey) throw new AppError('FAILED_PRECONDITION', 'only a live key that was never rotated can be rotated');
      logger.info({ tenantId, keyId: apiKey.id, rotatedFrom: old.id, graceSeconds, by: userId }, 'API key rotated');
      await record(
        'apikey.rotated',
        { tenantId, userId, role },
        {
          ...keyAttributes(apiKey),
          rotated_from: old.id,
          old_key_valid_until: new Date(at + graceSeconds * 1000).toISOString(),
        },
      );
      return { apiKey, key: material.key };
    },

    /**
     * UNAUTHENTICATED for every failure: unknown, wrong secret, revoked, expired, rotated out,
     * malformed — and when the key's person (a user key's user, a tenant key's creator or last
     * rotator) is no longer a member of the tenant, or is a member again since after the key
     * was made (its created_at; a rotated key's is the rotation): a key dies for good with the
     * membership it was made in. tenant-registry is asked only once the secret matched; its
     * failures pass through (an outage, or an answer without member_since, is
     * DEPENDENCY_UNAVAILABLE). Only an accepted key's use is recorded as last_used_at.
     */
    async verify(key: string): Promise<VerifiedApiKey> {
      const { id, secret } = parseApiKey(key);
      const found = await store.findForVerification(id);
      const presented = Buffer.from(hashSecret(secret), 'hex');
      // Compared even for an unknown id, so both cost the same.
      const expected = Buffer.from(found?.secretHash ?? '0'.repeat(64), 'hex');
      const matches = timingSafeEqual(presented, expected) && found !== undefined;
      const at = now();
      if (
        !found ||
        !matches ||
        found.revokedAt !== null ||
        (found.expiresAt !== null && found.expiresAt.getTime() <= at) ||
        (found.graceUntil !== null && found.graceUntil.getTime() <= at)
      ) {
        throw invalidKey();
      }
      const personId = found.kind === 'user' ? found.userId : found.createdBy;
      if (personId === null) throw invalidKey();
      const membership = await membershipSince(tenants, found.tenantId, personId, logger);
      if (!membership || !madeInMembership(found.createdAt, membership)) throw personGone();
      await store.touch(found.tenantId, found.id, new Date(at), LAST_USED_INTERVAL_MS).catch((error: unknown) => {
        logger.warn({ err: error, keyId: found.id }, 'could not record API key use');
      });
      return {
        keyId: found.id,
        tenantId: found.tenantId,
        kind: found.kind,
        userId: found.userId,
        createdBy: found.createdBy,
        scopes: found.scopes,
      };
    },
  };
}

export type ApiKeys = ReturnType<typeof createApiKeys>;
