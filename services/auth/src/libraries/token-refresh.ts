import { AppError, roleOf, type AuditPublisher, type Logger, type RoleName } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import type { AccessTokens } from './access-tokens.js';
import { madeInMembership, membershipSince, notAMember, type TenantDirectory } from './memberships.js';
import {
  generateRefreshToken,
  invalidRefreshToken,
  parseRefreshToken,
  type RefreshTokenRecord,
  type RefreshTokenStore,
} from './refresh-tokens.js';
import type { Sessions } from './sessions.js';

export interface TokenRefreshDeps {
  refreshTokens: Pick<RefreshTokenStore, 'findByHash' | 'spend'>;
  sessions: Pick<Sessions, 'touch' | 'end'>;
  tenants: Pick<TenantDirectory, 'getMembership'>;
  tokens: Pick<AccessTokens, 'issue'>;
  /** REFRESH_TOKEN_TTL_SECONDS. */
  ttlSeconds: number;
  /** Where refreshes (`auth.token_refreshed`) and detected reuse (`auth.token_reuse`) are recorded. */
  audit: Pick<AuditPublisher, 'publish'>;
  logger: Logger;
  now?: () => number;
}

export interface RefreshedTokens {
  accessToken: string;
  expiresInSeconds: number;
  refreshToken: string;
  refreshExpiresInSeconds: number;
  tenantId: string;
  role: RoleName;
  sessionId: string;
}

export const REUSE_MESSAGE = 'refresh token was already used; the session has been ended';

const sessionEnded = () => new AppError('UNAUTHENTICATED', 'the session has ended');

/**
 * Refresh-token rotation with reuse detection. Every refresh spends the presented token and
 * hands out its successor in the same family; presenting a token that was already spent or
 * revoked ends the session and revokes the whole family — whoever holds the newest token,
 * thief or owner, has to sign in again.
 *
 * Both are recorded in the session's tenant's audit trail once stored: `auth.token_refreshed`
 * (tokens whose refresh was not recorded are not handed out: the session is ended) and
 * `auth.token_reuse` (outcome FAILURE), after the family is revoked.
 */
export function createTokenRefresh({
  refreshTokens,
  sessions,
  tenants,
  tokens,
  ttlSeconds,
  audit,
  logger,
  now = Date.now,
}: TokenRefreshDeps) {
  const reuse = async (record: RefreshTokenRecord): Promise<never> => {
    await sessions.end(record.sessionId, record.userId);
    logger.warn({ userId: record.userId, sessionId: record.sessionId }, 'refresh token reuse: session ended, family revoked');
    await audit.publish({
      tenantId: record.tenantId,
      kind: 'auth.token_reuse',
      principal: { kind: PrincipalKind.USER, id: record.userId, tenantId: record.tenantId },
      object: 'sessions',
      action: 'refresh',
      outcome: Outcome.FAILURE,
      reason: 'a spent or revoked refresh token was presented again: session ended, token family revoked',
      attributes: { session_id: record.sessionId, family_id: record.familyId },
    });
    throw new AppError('UNAUTHENTICATED', REUSE_MESSAGE);
  };

  return {
    async refresh(presented: string): Promise<RefreshedTokens> {
      const tokenHash = parseRefreshToken(presented);
      const record = await refreshTokens.findByHash(tokenHash);
      if (!record) throw invalidRefreshToken();
      if (record.usedAt !== null || record.revokedAt !== null) return reuse(record);
      if (record.expiresAt.getTime() <= now()) throw invalidRefreshToken();

      // Asked before the token is spent, so a tenant-registry outage does not burn it.
      const { sessionId, userId, tenantId } = record;
      // A token issued before the current membership began belongs to an earlier one the person
      // was removed from: that session stays dead even if they were added again since.
      const membership = await membershipSince(tenants, tenantId, userId, logger);
      if (membership === undefined || !madeInMembership(record.createdAt, membership)) {
        await sessions.end(sessionId, userId);
        logger.info({ userId, tenantId, sessionId }, 'refresh denied: no longer a member; session ended');
        throw notAMember();
      }
      const { role } = membership;

      const successor = generateRefreshToken();
      const access = await refreshTokens.spend(tokenHash, ttlSeconds, async (spent) => {
        // The spent row stays locked until this returns: a concurrent refresh with the same
        // token waits, then finds it spent (reuse) only after this one has finished.
        if (!(await sessions.touch(spent.sessionId, spent.userId))) throw sessionEnded();
        const issued = await tokens.issue({ userId: spent.userId, tenantId: spent.tenantId, role, sessionId: spent.sessionId });
        return { successor: { ...spent, tokenHash: successor.tokenHash }, result: issued };
      });
      if (access === undefined) {
        // Spent, revoked or expired between the lookup and the update.
        const again = await refreshTokens.findByHash(tokenHash);
        if (again && (again.usedAt !== null || again.revokedAt !== null)) return reuse(again);
        throw invalidRefreshToken();
      }
      await audit
        .publish({
          tenantId,
          kind: 'auth.token_refreshed',
          principal: { kind: PrincipalKind.USER, id: userId, tenantId, role: roleOf(role) },
          object: 'sessions',
          action: 'refresh',
          outcome: Outcome.SUCCESS,
          attributes: { session_id: sessionId },
        })
        .catch(async (error: unknown) => {
          // The successor is never handed out: end the session rather than leave it to a false reuse alarm.
          await sessions.end(sessionId, userId).catch(() => undefined);
          throw error;
        });
      logger.info({ userId, tenantId, role, sessionId, jti: access.jti }, 'tokens refreshed');
      return {
        accessToken: access.token,
        expiresInSeconds: access.expiresInSeconds,
        refreshToken: successor.token,
        refreshExpiresInSeconds: ttlSeconds,
        tenantId,
        role,
        sessionId,
      };
    },
  };
}

export type TokenRefresh = ReturnType<typeof createTokenRefresh>;
