import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AppError, implement, onlyServices, PLATFORM_OPS, roleOf, type ServiceHandlers } from '@portcullis/kit';
import { ApiKeyKind, ApiKeySchema, AuthService, OAuthProvider, type ApiKey } from '@portcullis/proto/auth';
import type { ApiKeyKind as KindName, ApiKeyRecord, ApiKeys } from '../libraries/api-keys.js';
import type { Accounts } from '../libraries/accounts.js';
import type { OAuthSignIn } from '../libraries/oauth-sign-in.js';
import type { OAuthProviderName } from '../libraries/oauth-state.js';
import type { PhoneVerification } from '../libraries/phone-verification.js';
import type { Sessions } from '../libraries/sessions.js';
import type { SignIn } from '../libraries/sign-in.js';
import type { SigningKeys } from '../libraries/signing-keys.js';
import type { TokenRefresh } from '../libraries/token-refresh.js';
import type { RobotRecord, Robots } from '../libraries/robots.js';
import type { ServiceTokens } from '../libraries/service-tokens.js';

export interface AuthServiceDeps {
  accounts: Pick<Accounts, 'signUp'>;
  signIn: SignIn;
  refresh: TokenRefresh;
  sessions: Pick<Sessions, 'list' | 'revoke' | 'revokeAll'>;
  signingKeys: Pick<SigningKeys, 'rotate'>;
  phone: PhoneVerification;
  apiKeys: ApiKeys;
  robots: Robots;
  serviceTokens: ServiceTokens;
  /** Google/GitHub sign-in; without it both OAuth RPCs answer FAILED_PRECONDITION. */
  oauth?: OAuthSignIn | undefined;
}

function kindName(kind: ApiKeyKind): KindName {
  switch (kind) {
    case ApiKeyKind.TENANT:
      return 'tenant';
    case ApiKeyKind.USER:
      return 'user';
    case ApiKeyKind.UNSPECIFIED:
      throw new AppError('INVALID_ARGUMENT', 'kind must be TENANT or USER', { details: { field: 'kind' } });
  }
}

const kindOf = (kind: KindName): ApiKeyKind => (kind === 'tenant' ? ApiKeyKind.TENANT : ApiKeyKind.USER);
const optionalTime = (date: Date | null) => (date ? timestampFromDate(date) : undefined);

function apiKeyOf(key: ApiKeyRecord): ApiKey {
  return create(ApiKeySchema, {
    keyId: key.id,
    tenantId: key.tenantId,
    kind: kindOf(key.kind),
    userId: key.userId ?? '',
    createdBy: key.createdBy,
    name: key.name,
    scopes: key.scopes,
    createdAt: timestampFromDate(key.createdAt),
    expiresAt: optionalTime(key.expiresAt),
    revokedAt: optionalTime(key.revokedAt),
    lastUsedAt: optionalTime(key.lastUsedAt),
    graceUntil: optionalTime(key.graceUntil),
    rotatedFrom: key.rotatedFrom ?? '',
  });
}

function robotOf(robot: RobotRecord) {
  return {
    robotId: robot.id,
    tenantId: robot.tenantId,
    name: robot.name,
    creatorId: robot.creatorId,
    teamIds: robot.teamIds,
    createdAt: timestampFromDate(robot.createdAt),
    expiresAt: optionalTime(robot.expiresAt),
    revokedAt: optionalTime(robot.revokedAt),
  };
}

/** The robot RPCs (see libraries/robots.ts). */
export function robotHandlers(
  robots: Robots,
): Pick<ServiceHandlers<typeof AuthService>, 'createRobot' | 'listRobots' | 'revokeRobot' | 'verifyRobotToken'> {
  return {
    async createRobot(request) {
      const { robot, token } = await robots.create({
        tenantId: request.tenantId,
        actor: request.actor,
        name: request.name,
        teamIds: request.teamIds,
        expiresAt: request.expiresAt ? timestampDate(request.expiresAt) : undefined,
      });
      return { robot: robotOf(robot), token };
    },
    async listRobots(request) {
      return { robots: (await robots.list(request.tenantId, request.actor)).map(robotOf) };
    },
    async revokeRobot(request) {
      await robots.revoke(request.tenantId, request.actor, request.robotId);
      return {};
    },
    async verifyRobotToken(request) {
      return robots.verify(request.token);
    },
  };
}

function providerName(provider: OAuthProvider): OAuthProviderName {
  switch (provider) {
    case OAuthProvider.GOOGLE:
      return 'google';
    case OAuthProvider.GITHUB:
      return 'github';
    case OAuthProvider.UNSPECIFIED:
      throw new AppError('INVALID_ARGUMENT', 'provider must be GOOGLE or GITHUB', { details: { field: 'provider' } });
  }
}

/** The Google/GitHub sign-in RPCs (see libraries/oauth-sign-in.ts). */
export function oauthHandlers(
  oauth: OAuthSignIn | undefined,
  phone: Pick<PhoneVerification, 'isVerified'>,
): Pick<ServiceHandlers<typeof AuthService>, 'startOAuth' | 'completeOAuth'> {
  const configured = (provider: OAuthProvider): { oauth: OAuthSignIn; name: OAuthProviderName } => {
    const name = providerName(provider);
    if (!oauth) throw new AppError('FAILED_PRECONDITION', `${name} sign-in is not configured`);
    return { oauth, name };
  };
  return {
    async startOAuth(request) {
      const { oauth: library, name } = configured(request.provider);
      return library.start(name, request.browserBinding);
    },
    async completeOAuth(request) {
      const { oauth: library, name } = configured(request.provider);
      const result = await library.complete({
        provider: name,
        binding: request.browserBinding,
        callbackQuery: request.callbackQuery,
        clientIp: request.clientIp,
      });
      return {
        loginTicket: result.ticket,
        userId: result.userId,
        ticketExpiresInSeconds: result.ticketExpiresInSeconds,
        phoneVerified: await phone.isVerified(result.userId),
        tenants: result.tenants.map(({ tenantId, tenantName, role }) => ({ tenantId, tenantName, role: roleOf(role) })),
        accountCreated: result.accountCreated,
      };
    },
  };
}

/**
 * Only the gateway (and operators) call auth; tenant service credentials are minted only for the
 * gateway, which has authenticated and authorized the principal first. The audit service verifies
 * the token of every event a robot publishes.
 */
export const authServiceAccess = {
  default: onlyServices('api-gateway', PLATFORM_OPS),
  issueServiceToken: onlyServices('api-gateway'),
  verifyRobotToken: onlyServices('api-gateway', 'audit', PLATFORM_OPS),
};

export function createAuthService(deps: AuthServiceDeps) {
  const { accounts, signIn, refresh, sessions, signingKeys, phone, apiKeys, robots, serviceTokens, oauth } = deps;
  return implement(
    AuthService,
    {
      async signUp(request) {
        const userId = await accounts.signUp({
          email: request.email,
          password: request.password,
          displayName: request.displayName,
          phone: request.phone,
        });
        return { userId };
      },
      async login(request) {
        const result = await signIn.login({ email: request.email, password: request.password, clientIp: request.clientIp });
        return {
          loginTicket: result.ticket,
          userId: result.userId,
          ticketExpiresInSeconds: result.ticketExpiresInSeconds,
          phoneVerified: await phone.isVerified(result.userId),
          tenants: result.tenants.map(({ tenantId, tenantName, role }) => ({ tenantId, tenantName, role: roleOf(role) })),
        };
      },
      async selectTenant(request) {
        const session = await signIn.selectTenant({
          ticket: request.loginTicket,
          tenantId: request.tenantId,
          clientIp: request.clientIp,
          userAgent: request.userAgent,
        });
        return {
          accessToken: session.accessToken,
          tokenType: 'Bearer',
          expiresInSeconds: session.expiresInSeconds,
          tenantId: session.tenantId,
          role: roleOf(session.role),
          refreshToken: session.refreshToken,
          refreshExpiresInSeconds: session.refreshExpiresInSeconds,
          sessionId: session.sessionId,
        };
      },
      async inspectLoginTicket(request) {
        const userId = await signIn.inspectTicket(request.loginTicket);
        return { userId, phoneVerified: await phone.isVerified(userId) };
      },
      async refreshTokens(request) {
        const tokens = await refresh.refresh(request.refreshToken);
        return {
          accessToken: tokens.accessToken,
          tokenType: 'Bearer',
          expiresInSeconds: tokens.expiresInSeconds,
          refreshToken: tokens.refreshToken,
          refreshExpiresInSeconds: tokens.refreshExpiresInSeconds,
          tenantId: tokens.tenantId,
          role: roleOf(tokens.role),
          sessionId: tokens.sessionId,
        };
      },
      async listSessions(request) {
        const list = await sessions.list(request.userId);
        return {
          sessions: list.map((session) => ({
            sessionId: session.sessionId,
            tenantId: session.tenantId,
            createdAt: timestampFromDate(session.createdAt),
            lastUsedAt: timestampFromDate(session.lastUsedAt),
            clientIp: session.clientIp,
            userAgent: session.userAgent,
          })),
        };
      },
      async revokeSession(request) {
        await sessions.revoke(request.userId, request.sessionId);
        return {};
      },
      async revokeAllSessions(request) {
        return { revoked: await sessions.revokeAll(request.userId) };
      },
      async rotateSigningKey() {
        const { kid, signingFrom } = await signingKeys.rotate();
        return { kid, signingFrom: timestampFromDate(signingFrom) };
      },
      async startPhoneVerification(request) {
        return phone.start(request.loginTicket, request.phone);
      },
      async verifyPhone(request) {
        await phone.verify(request.loginTicket, request.code);
        return { phoneVerified: true };
      },
      async createApiKey(request) {
        const { apiKey, key } = await apiKeys.create({
          tenantId: request.tenantId,
          actor: request.actor,
          kind: kindName(request.kind),
          name: request.name,
          scopes: request.scopes,
          expiresAt: request.expiresAt ? timestampDate(request.expiresAt) : undefined,
        });
        return { apiKey: apiKeyOf(apiKey), key };
      },
      async listApiKeys(request) {
        return { apiKeys: (await apiKeys.list(request.tenantId, request.actor)).map(apiKeyOf) };
      },
      async revokeApiKey(request) {
        await apiKeys.revoke(request.tenantId, request.actor, request.keyId);
        return {};
      },
      async rotateApiKey(request) {
        const { apiKey, key } = await apiKeys.rotate(request.tenantId, request.actor, request.keyId, request.graceSeconds);
        return { apiKey: apiKeyOf(apiKey), key };
      },
      async verifyApiKey(request) {
        const verified = await apiKeys.verify(request.key);
        return {
          keyId: verified.keyId,
          tenantId: verified.tenantId,
          kind: kindOf(verified.kind),
          userId: verified.userId ?? '',
          scopes: verified.scopes,
          createdByUserId: verified.createdBy,
        };
      },
      async issueServiceToken(request) {
        const issued = await serviceTokens.issue({ principal: request.principal, audience: request.audience });
        return { token: issued.token, expiresAt: timestampFromDate(issued.expiresAt), audience: issued.audience };
      },
      ...robotHandlers(robots),
      ...oauthHandlers(oauth, phone),
    },
    authServiceAccess,
  );
}
