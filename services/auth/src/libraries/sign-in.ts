import { AppError, requireUuid, type GrpcClient, type Logger } from '@portcullis/kit';
import type { TenantRegistryService } from '@portcullis/proto/tenant';
import type { AccessTokens } from './access-tokens.js';
import type { Accounts } from './accounts.js';
import type { LoginTickets } from './login-tickets.js';
import { roleNameOf, type RoleName } from '@portcullis/kit';

/** The two tenant-registry calls sign-in makes. */
export type TenantDirectory = Pick<GrpcClient<typeof TenantRegistryService>, 'listUserTenants' | 'getMembership'>;

export interface SignInDeps {
  accounts: Pick<Accounts, 'authenticate'>;
  tickets: LoginTickets;
  tenants: TenantDirectory;
  tokens: Pick<AccessTokens, 'issue'>;
  logger: Logger;
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

export interface TenantSession {
  accessToken: string;
  expiresInSeconds: number;
  tenantId: string;
  role: RoleName;
}

const notAMember = () => new AppError('PERMISSION_DENIED', 'not a member of this tenant');

/**
 * Two-step sign-in: a password login yields a single-use ticket plus the user's tenants;
 * selecting one tenant consumes the ticket and issues an access token bound to it.
 */
export function createSignIn({ accounts, tickets, tenants, tokens, logger }: SignInDeps) {
  return {
    async login(email: string, password: string): Promise<LoginResult> {
      const userId = await accounts.authenticate(email, password);
      const { memberships } = await tenants.listUserTenants({ userId });
      const options = memberships.flatMap((membership): TenantOption[] => {
        const role = roleNameOf(membership.role);
        if (role === undefined) return [];
        return [{ tenantId: membership.tenantId, tenantName: membership.tenantName, role }];
      });
      const { ticket, expiresInSeconds } = await tickets.issue(userId);
      logger.info({ userId, tenantCount: options.length }, 'password login succeeded');
      return { ticket, userId, ticketExpiresInSeconds: expiresInSeconds, tenants: options };
    },

    inspectTicket(ticket: string): Promise<string> {
      return tickets.inspect(ticket);
    },

    async selectTenant(ticket: string, tenantIdInput: string): Promise<TenantSession> {
      const tenantId = requireUuid(tenantIdInput, 'tenant_id');
      // Consumed before anything else: whatever happens next, this ticket is spent.
      const userId = await tickets.consume(ticket);
      const membership = await tenants.getMembership({ tenantId, userId }).then(
        (response) => response.membership,
        (error: unknown) => {
          if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
          throw error;
        },
      );
      const role = membership && roleNameOf(membership.role);
      if (!membership || role === undefined || membership.tenantId !== tenantId || membership.userId !== userId) {
        logger.info({ userId, tenantId }, 'tenant selection denied');
        throw notAMember();
      }
      const { token, jti, expiresInSeconds } = await tokens.issue({ userId, tenantId, role });
      logger.info({ userId, tenantId, role, jti }, 'access token issued');
      return { accessToken: token, expiresInSeconds, tenantId, role };
    },
  };
}

export type SignIn = ReturnType<typeof createSignIn>;
