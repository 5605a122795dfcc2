import { requireUuid, roleNameOf, roleOf, type AuditPublisher, type Logger, type RoleName } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import type { AccessTokens } from './access-tokens.js';
import type { Accounts } from './accounts.js';
import { cleanUserAgent, parseClientIp } from './client-address.js';
import type { LoginThrottle } from './login-throttle.js';
import type { LoginTickets } from './login-tickets.js';
import { currentRole, notAMember, type TenantDirectory } from './memberships.js';
import type { Sessions } from './sessions.js';

export type { TenantDirectory } from './memberships.js';

export interface SignInDeps {
  accounts: Pick<Accounts, 'authenticate'>;
  throttle: LoginThrottle;
  tickets: LoginTickets;
  tenants: TenantDirectory;
  sessions: Pick<Sessions, 'open' | 'end'>;
  tokens: Pick<AccessTokens, 'issue'>;
  /** Where a sign-in into a tenant is recorded (`auth.signin`) before its tokens are handed out. */
  audit: Pick<AuditPublisher, 'publish'>;
  logger: Logger;
}

export interface LoginInput {
  email: string;
  password: string;
  /** As the gateway saw it; empty when unknown (then only the per-account limit applies). */
  clientIp: string;
}

export interface TenantOption {
  tenantId: string;
  tenantName: string;
  role: RoleName;
}

export interface LoginResult {
  ticket: string;
  userId: string;
  ticketExpiresInSeconds: number;
  tenants: TenantOption[];
}

export interface SelectTenantInput {
  ticket: string;
  tenantId: string;
  clientIp: string;
  userAgent: string;
}

export interface TenantSession {
  accessToken: string;
  expiresInSeconds: number;
  tenantId: string;
  role: RoleName;
  sessionId: string;
  refreshToken: string;
  refreshExpiresInSeconds: number;
}

/**
 * Two-step sign-in: a (throttled) password login yields a single-use ticket plus the user's
 * tenants; selecting one tenant consumes the ticket, opens a session and issues an access
 * token bound to the tenant and the session, plus the session's first refresh token. Google and
 * GitHub sign-ins end in the same ticket, so every sign-in into a tenant passes selectTenant,
 * which records it in the tenant's audit trail (`auth.signin`); tokens whose sign-in was not
 * recorded are never handed out (their session is ended).
 */
export function createSignIn({ accounts, throttle, tickets, tenants, sessions, tokens, audit, logger }: SignInDeps) {
  /** A login ticket and the tenant list, for a user whose identity was just proven. */
  const ticketFor = async (userId: string): Promise<LoginResult> => {
    const { memberships } = await tenants.listUserTenants({ userId });
    const options = memberships.flatMap((membership): TenantOption[] => {
      const role = roleNameOf(membership.role);
      if (role === undefined) return [];
      return [{ tenantId: membership.tenantId, tenantName: membership.tenantName, role }];
    });
    const { ticket, expiresInSeconds } = await tickets.issue(userId);
    return { ticket, userId, ticketExpiresInSeconds: expiresInSeconds, tenants: options };
  };

  return {
    async login({ email, password, clientIp }: LoginInput): Promise<LoginResult> {
      const client = parseClientIp(clientIp);
      const userId = await throttle.attempt(email, client, () => accounts.authenticate(email, password));
      const result = await ticketFor(userId);
      logger.info({ userId, tenantCount: result.tenants.length }, 'password login succeeded');
      return result;
    },

    /** The answer of a sign-in proven some other way (Google, GitHub): exactly what login returns. */
    ticketFor,

    inspectTicket(ticket: string): Promise<string> {
      return tickets.inspect(ticket);
    },

    async selectTenant(input: SelectTenantInput): Promise<TenantSession> {
      // Every argument is checked before the ticket is spent.
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const clientIp = parseClientIp(input.clientIp)?.ip ?? '';
      const userAgent = cleanUserAgent(input.userAgent);
      // Consumed before anything else: whatever happens next, this ticket is spent.
      const userId = await tickets.consume(input.ticket);
      const role = await currentRole(tenants, tenantId, userId);
      if (role === undefined) {
        logger.info({ userId, tenantId }, 'tenant selection denied');
        throw notAMember();
      }
      const session = await sessions.open({ userId, tenantId, clientIp, userAgent });
      // Nobody will hold this session's tokens: end it rather than leave it listed.
      const abandon = async (error: unknown): Promise<never> => {
        await sessions.end(session.sessionId, userId).catch(() => undefined);
        throw error;
      };
      const access = await tokens.issue({ userId, tenantId, role, sessionId: session.sessionId }).catch(abandon);
      await audit
        .publish({
          tenantId,
          kind: 'auth.signin',
          principal: { kind: PrincipalKind.USER, id: userId, tenantId, role: roleOf(role) },
          object: 'sessions',
          action: 'create',
          outcome: Outcome.SUCCESS,
          attributes: { session_id: session.sessionId, role, client_ip: clientIp },
        })
        .catch(abandon);
      logger.info({ userId, tenantId, role, sessionId: session.sessionId, jti: access.jti }, 'access token issued');
      return {
        accessToken: access.token,
        expiresInSeconds: access.expiresInSeconds,
        tenantId,
        role,
        sessionId: session.sessionId,
        refreshToken: session.refreshToken,
        refreshExpiresInSeconds: session.refreshExpiresInSeconds,
      };
    },
  };
}

export type SignIn = ReturnType<typeof createSignIn>;
