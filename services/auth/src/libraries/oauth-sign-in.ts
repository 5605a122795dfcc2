import { randomBytes } from 'node:crypto';
import { AppError, type AuditPublisher, type Logger } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import * as client from 'openid-client';
import { parseClientIp } from './client-address.js';
import { canonicalEmail, DISPLAY_NAME_MAX_LENGTH } from './credentials.js';
import type { LoginTickets } from './login-tickets.js';
import type { OAuthProviderClient, ProviderIdentity } from './oauth-providers.js';
import { safeErrorCode } from './oauth-providers.js';
import { invalidState, isDigestShaped, sameString, StateRefused, type OAuthProviderName, type StateSigner } from './oauth-state.js';
import type { Sessions } from './sessions.js';
import type { LoginResult, SignIn } from './sign-in.js';

/** The Redis commands the single-use state records need (ioredis satisfies it). */
export interface OAuthStateStore {
  set(key: string, value: string, expiryMode: 'EX', seconds: number): Promise<unknown>;
  /** Atomic read-and-delete (Redis ≥ 6.2 GETDEL): of two callbacks with one state, one wins. */
  getdel(key: string): Promise<string | null>;
}

/** What one started sign-in keeps server-side until its callback (or its TTL). */
export interface OAuthStateRecord {
  provider: OAuthProviderName;
  codeVerifier: string;
  /** Absent for providers without an ID token (GitHub). */
  nonce?: string;
  /** SHA-256 (base64url) of the browser's binding cookie. */
  binding: string;
}

/** One credential a reclaim revoked: an API key id or robot id and its tenant (never a secret). */
export interface RevokedCredential {
  id: string;
  tenantId: string;
}

/** What a reclaim revoked, in every tenant. */
export interface RevokedCredentials {
  apiKeys: RevokedCredential[];
  robots: RevokedCredential[];
}

/** The database operations of account resolution, all inside one transaction. */
export interface OAuthAccountTx {
  /** The user an identity is linked to. */
  findIdentity(provider: OAuthProviderName, subject: string): Promise<string | undefined>;
  /** The user with this (canonical) email, row-locked until the transaction ends. */
  lockUserByEmail(email: string): Promise<{ id: string; emailVerified: boolean } | undefined>;
  /** A new user: email verified now, no password, no phone. Returns its id. */
  createUser(user: { email: string; displayName: string }): Promise<string>;
  /**
   * Marks the user's email verified, removes its password and its phone number (verified or
   * not), and revokes, in every tenant, every API key and robot the account could hold: its
   * user keys, the tenant keys it created or last rotated (also one still in its rotation grace
   * period) and the robots it created. Returns what it revoked.
   */
  reclaimUser(userId: string): Promise<RevokedCredentials>;
  insertIdentity(identity: { provider: OAuthProviderName; subject: string; userId: string; email: string }): Promise<void>;
}

export interface OAuthAccountStore {
  /** Runs `work` in one transaction; it commits only if `work` resolves. */
  transaction<T>(work: (tx: OAuthAccountTx) => Promise<T>): Promise<T>;
  /** Revokes, in every tenant, the API keys and robots of the user as reclaimUser does, in a transaction of its own. */
  revokeCredentials(userId: string): Promise<RevokedCredentials>;
}

/**
 * - `existing`: the identity was already linked.
 * - `linked`: linked to the account with that email, whose email was already verified.
 * - `reclaimed`: linked to the account with that email, which nobody had verified: the email is
 *   now verified, its password and phone number removed, every API key and robot it holds or
 *   created revoked (in every tenant) and every session and login ticket ended.
 * - `created`: a new account.
 */
export type AccountOutcome = 'existing' | 'linked' | 'reclaimed' | 'created';

export interface OAuthSignInDeps {
  /** Only the configured providers. */
  providers: Partial<Record<OAuthProviderName, OAuthProviderClient>>;
  signer: StateSigner;
  states: OAuthStateStore;
  /** Prefix of every Redis key, e.g. `portcullis:`. */
  keyPrefix: string;
  stateTtlSeconds: number;
  accounts: OAuthAccountStore;
  sessions: Pick<Sessions, 'revokeAll'>;
  tickets: Pick<LoginTickets, 'revokeAll'>;
  signIn: Pick<SignIn, 'ticketFor'>;
  /** Where the API keys and robots a reclaim revoked are recorded, each in its tenant (its sessions: by `sessions`). */
  audit: Pick<AuditPublisher, 'publish'>;
  logger: Logger;
  now?: () => number;
}

export interface CompleteInput {
  provider: OAuthProviderName;
  binding: string;
  /** The callback's query string as received (without the leading `?`). */
  callbackQuery: string;
  clientIp: string;
}

export interface OAuthLoginResult extends LoginResult {
  accountCreated: boolean;
  outcome: AccountOutcome;
}

/** Longer than any real callback (code, state, iss, scope, authuser, prompt…). */
export const CALLBACK_QUERY_MAX_LENGTH = 4096;

/** The Redis key of a started sign-in. */
export function oauthStateKey(keyPrefix: string, stateId: string): string {
  return `${keyPrefix}oauth:${stateId}`;
}

const notConfigured = (provider: OAuthProviderName) => new AppError('FAILED_PRECONDITION', `${provider} sign-in is not configured`);
const spentState = () => new AppError('UNAUTHENTICATED', 'this sign-in was already completed or has expired; start it again');

function parseRecord(value: string): OAuthStateRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { provider, codeVerifier, nonce, binding } = parsed as Record<string, unknown>;
  if ((provider !== 'google' && provider !== 'github') || typeof codeVerifier !== 'string' || typeof binding !== 'string') return undefined;
  if (nonce !== undefined && typeof nonce !== 'string') return undefined;
  return nonce === undefined ? { provider, codeVerifier, binding } : { provider, codeVerifier, nonce, binding };
}

/** The single value of a query parameter; undefined when absent, refused when repeated. */
function single(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1) throw new AppError('INVALID_ARGUMENT', `the callback repeats the ${name} parameter`);
  return values[0];
}

/** A provider's display name, trimmed and cut to what an account may hold. */
function displayNameOf(identity: ProviderIdentity): string {
  return Array.from(identity.displayName.trim()).slice(0, DISPLAY_NAME_MAX_LENGTH).join('').trim();
}

/**
 * Google and GitHub sign-in.
 *
 * start: a random state id, PKCE verifier and (Google) nonce are kept in Redis under the state
 * id for `stateTtlSeconds`; the `state` parameter names the id and is HMAC-signed together
 * with the browser binding (see oauth-state.ts).
 *
 * complete: the state must verify for the presented binding and provider and be unexpired;
 * its record is then taken with GETDEL (a replayed or expired callback finds nothing) and must
 * name the same binding. Only then is the code redeemed (PKCE verifier, expected state and,
 * for Google, the nonce). The account is resolved by provider-verified email only (see
 * resolveAccount) and the person gets a login ticket and tenant list exactly as a password
 * login does.
 */
export function createOAuthSignIn(deps: OAuthSignInDeps) {
  const { providers, signer, states, keyPrefix, stateTtlSeconds, accounts, sessions, tickets, signIn, audit, logger } = deps;
  const now = deps.now ?? Date.now;

  const providerOf = (name: OAuthProviderName): OAuthProviderClient => {
    const provider = providers[name];
    if (!provider) throw notConfigured(name);
    return provider;
  };

  const reclaimReason = (provider: OAuthProviderName) => `account reclaimed by a sign-in with a ${provider}-verified email`;

  /** Ends every session and outstanding login ticket of a reclaimed account. */
  const endEverything = async (userId: string, provider: OAuthProviderName): Promise<void> => {
    const sessionsEnded = await sessions.revokeAll(userId, reclaimReason(provider));
    const ticketsEnded = await tickets.revokeAll(userId);
    logger.info({ userId, sessionsEnded, ticketsEnded }, 'reclaimed account: sessions and login tickets ended');
  };

  /** Logs what a reclaim revoked: ids and tenants only. */
  const logRevoked = (userId: string, revoked: RevokedCredentials, message: string): void => {
    logger.info(
      {
        userId,
        apiKeysRevoked: revoked.apiKeys.length,
        robotsRevoked: revoked.robots.length,
        apiKeys: revoked.apiKeys,
        robots: revoked.robots,
      },
      message,
    );
  };

  /** Records, once committed, each API key and robot a reclaim revoked, in its own tenant, as the account's. */
  const recordRevoked = async (userId: string, provider: OAuthProviderName, revoked: RevokedCredentials): Promise<void> => {
    const event = (credential: RevokedCredential, kind: 'apikey.revoked' | 'robots.revoked', attribute: 'key_id' | 'robot_id') =>
      audit.publish({
        tenantId: credential.tenantId,
        kind,
        principal: { kind: PrincipalKind.USER, id: userId, tenantId: credential.tenantId },
        object: kind === 'apikey.revoked' ? 'apikeys' : 'robots',
        action: 'revoke',
        outcome: Outcome.SUCCESS,
        reason: reclaimReason(provider),
        attributes: { [attribute]: credential.id },
      });
    await Promise.all([
      ...revoked.apiKeys.map((key) => event(key, 'apikey.revoked', 'key_id')),
      ...revoked.robots.map((robot) => event(robot, 'robots.revoked', 'robot_id')),
    ]);
  };

  /**
   * Identity already linked → its user. Otherwise the account with the same email gets the
   * identity linked; if nobody had verified that account's email (a password sign-up), the
   * provider's verification now counts: in one transaction the password and phone number are
   * removed, every API key and robot the account holds or created is revoked in every tenant,
   * and every session and login ticket is ended before it commits. Whoever controls the mailbox
   * owns the account, and someone who registered the address first (pre-account takeover) is
   * locked out with nothing left that still works. Otherwise a new account.
   */
  const resolveAccount = async (
    provider: OAuthProviderName,
    identity: ProviderIdentity & { email: string },
  ): Promise<{ userId: string; outcome: AccountOutcome }> => {
    const resolved = await accounts.transaction<{ userId: string; outcome: AccountOutcome; revoked?: RevokedCredentials }>(async (tx) => {
      const linked = await tx.findIdentity(provider, identity.subject);
      if (linked !== undefined) return { userId: linked, outcome: 'existing' as const };
      const link = (userId: string) => tx.insertIdentity({ provider, subject: identity.subject, userId, email: identity.email });
      const user = await tx.lockUserByEmail(identity.email);
      if (user) {
        await link(user.id);
        if (user.emailVerified) return { userId: user.id, outcome: 'linked' as const };
        const revoked = await tx.reclaimUser(user.id);
        // Inside the transaction: if this fails, nothing is committed and the next attempt redoes it all.
        await endEverything(user.id, provider);
        return { userId: user.id, outcome: 'reclaimed' as const, revoked };
      }
      const userId = await tx.createUser({ email: identity.email, displayName: displayNameOf(identity) });
      await link(userId);
      return { userId, outcome: 'created' as const };
    });
    if (resolved.outcome === 'reclaimed') {
      const { userId } = resolved;
      if (resolved.revoked) {
        logRevoked(userId, resolved.revoked, 'reclaimed account: API keys and robots revoked');
        await recordRevoked(userId, provider, resolved.revoked);
      }
      // Again after the commit, for a session or ticket a password login opened in between, and
      // for a key or robot made concurrently with a credential that was still live (an insert
      // the transaction's update could not see).
      await endEverything(userId, provider).catch((error: unknown) => {
        logger.warn({ userId, err: error }, 'ending the sessions of a reclaimed account again failed');
      });
      await accounts.revokeCredentials(userId).then(
        async (late) => {
          if (late.apiKeys.length + late.robots.length > 0) logRevoked(userId, late, 'reclaimed account: late API keys and robots revoked');
          await recordRevoked(userId, provider, late);
        },
        (error: unknown) => {
          logger.warn({ userId, err: error }, 'revoking the credentials of a reclaimed account again failed');
        },
      );
    }
    return { userId: resolved.userId, outcome: resolved.outcome };
  };

  /** Verifies the state and takes its record; every failure is UNAUTHENTICATED. */
  const takeRecord = async (provider: OAuthProviderName, binding: string, state: string | undefined): Promise<OAuthStateRecord> => {
    if (state === undefined) {
      logger.info({ provider }, 'oauth callback refused: no state');
      throw invalidState();
    }
    let stateId: string;
    try {
      ({ stateId } = signer.verify(state, binding, provider));
    } catch (error) {
      if (error instanceof StateRefused) logger.info({ provider, reason: error.reason }, 'oauth callback refused: state');
      throw error;
    }
    const stored = await states.getdel(oauthStateKey(keyPrefix, stateId));
    if (stored === null) {
      logger.info({ provider }, 'oauth callback refused: state already used or expired');
      throw spentState();
    }
    const record = parseRecord(stored);
    if (!record || record.provider !== provider || !sameString(record.binding, binding)) {
      logger.warn({ provider }, 'oauth callback refused: state record does not match');
      throw invalidState();
    }
    return record;
  };

  return {
    /** The provider's authorization URL for a browser whose binding is `binding`. */
    async start(name: OAuthProviderName, binding: string): Promise<{ authorizationUrl: string; expiresInSeconds: number }> {
      const provider = providerOf(name);
      if (!isDigestShaped(binding)) {
        throw new AppError('INVALID_ARGUMENT', 'browser_binding must be a SHA-256 digest in base64url', {
          details: { field: 'browser_binding' },
        });
      }
      const stateId = randomBytes(32).toString('base64url');
      const codeVerifier = client.randomPKCECodeVerifier();
      const nonce = provider.usesNonce ? client.randomNonce() : undefined;
      const state = signer.sign({ provider: name, stateId, expiresAt: Math.floor(now() / 1000) + stateTtlSeconds }, binding);
      // The URL first: if the provider cannot be discovered, nothing is stored.
      const url = await provider.authorizationUrl({ state, codeChallenge: await client.calculatePKCECodeChallenge(codeVerifier), nonce });
      const record: OAuthStateRecord =
        nonce === undefined ? { provider: name, codeVerifier, binding } : { provider: name, codeVerifier, nonce, binding };
      await states.set(oauthStateKey(keyPrefix, stateId), JSON.stringify(record), 'EX', stateTtlSeconds);
      logger.info({ provider: name }, 'oauth sign-in started');
      return { authorizationUrl: url.href, expiresInSeconds: stateTtlSeconds };
    },

    async complete({ provider: name, binding, callbackQuery, clientIp }: CompleteInput): Promise<OAuthLoginResult> {
      const provider = providerOf(name);
      if (callbackQuery.length > CALLBACK_QUERY_MAX_LENGTH) {
        throw new AppError('INVALID_ARGUMENT', 'the callback query is too long', { details: { field: 'callback_query' } });
      }
      if (!isDigestShaped(binding)) throw invalidState();
      const query = new URLSearchParams(callbackQuery.startsWith('?') ? callbackQuery.slice(1) : callbackQuery);
      const state = single(query, 'state');
      const providerError = single(query, 'error');
      if (providerError !== undefined) {
        // Spend the started sign-in (if this browser's): it is over either way.
        await takeRecord(name, binding, state).catch(() => undefined);
        logger.info({ provider: name, oauthError: safeErrorCode(providerError) }, 'provider did not authorize the sign-in');
        throw new AppError('UNAUTHENTICATED', `${name} sign-in was not completed (${safeErrorCode(providerError)}); start it again`);
      }
      if (state === undefined || single(query, 'code') === undefined) {
        throw new AppError('INVALID_ARGUMENT', 'the callback carries no code or state', { details: { field: 'callback_query' } });
      }
      const record = await takeRecord(name, binding, state);
      const identity = await provider.redeem({ callbackQuery: query, codeVerifier: record.codeVerifier, state, nonce: record.nonce });

      const email = identity.email === undefined ? undefined : canonicalEmail(identity.email);
      if (!identity.emailVerified || email === undefined) {
        logger.info({ provider: name, hasEmail: identity.email !== undefined }, 'oauth sign-in refused: no verified email');
        throw new AppError(
          'PERMISSION_DENIED',
          `your ${name} account has no verified email address usable here; verify your email with ${name}, then sign in again`,
        );
      }
      if (identity.subject.length === 0 || identity.subject.length > 255) {
        throw new AppError('UPSTREAM_FAILED', `${name} returned an unusable account id`);
      }

      const { userId, outcome } = await resolveAccount(name, { ...identity, email });
      const result = await signIn.ticketFor(userId);
      logger.info(
        { userId, provider: name, outcome, tenantCount: result.tenants.length, clientIp: parseClientIp(clientIp)?.ip ?? '' },
        'oauth sign-in succeeded',
      );
      return { ...result, accountCreated: outcome === 'created', outcome };
    },
  };
}

export type OAuthSignIn = ReturnType<typeof createOAuthSignIn>;
