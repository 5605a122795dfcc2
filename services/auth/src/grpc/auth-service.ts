import { implement } from '@portcullis/kit';
import { AuthService } from '@portcullis/proto/auth';
import type { Accounts } from '../libraries/accounts.js';
import { roleOf } from '@portcullis/kit';
import type { SignIn } from '../libraries/sign-in.js';

export interface AuthServiceDeps {
  accounts: Pick<Accounts, 'signUp'>;
  signIn: SignIn;
}

export function createAuthService({ accounts, signIn }: AuthServiceDeps) {
  return implement(AuthService, {
    async signUp(request) {
      const userId = await accounts.signUp({ email: request.email, password: request.password, displayName: request.displayName });
      return { userId };
    },
    async login(request) {
      const result = await signIn.login(request.email, request.password);
      return {
        loginTicket: result.ticket,
        userId: result.userId,
        ticketExpiresInSeconds: result.ticketExpiresInSeconds,
        tenants: result.tenants.map(({ tenantId, tenantName, role }) => ({ tenantId, tenantName, role: roleOf(role) })),
      };
    },
    async selectTenant(request) {
      const session = await signIn.selectTenant(request.loginTicket, request.tenantId);
      return {
        accessToken: session.accessToken,
        tokenType: 'Bearer',
        expiresInSeconds: session.expiresInSeconds,
        tenantId: session.tenantId,
        role: roleOf(session.role),
      };
    },
    async inspectLoginTicket(request) {
      return { userId: await signIn.inspectTicket(request.loginTicket) };
    },
  });
}
