import { AppError, type ServiceIdentity } from '@portcullis/kit';
import { PrincipalKind, type Principal } from '@portcullis/proto/common';

/** The services that admit tenant service credentials (a tenant's backend asking about its own tenant). */
export const tenantCredentialAudiences: readonly string[] = ['policy'];

export interface ServiceTokensDeps {
  identity: Pick<ServiceIdentity, 'issueTenantToken'>;
  ttlSeconds: number;
}

export interface ServiceTokens {
  issue(request: { principal: Principal | undefined; audience: string }): Promise<{ token: string; expiresAt: Date; audience: string }>;
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function subjectOf(principal: Principal): string {
  switch (principal.kind) {
    case PrincipalKind.API_KEY:
      return `apikey:${principal.id}`;
    case PrincipalKind.USER:
      return `user:${principal.id}`;
    default:
      throw new AppError('PERMISSION_DENIED', 'only API keys and signed-in people obtain service credentials');
  }
}

/**
 * Tenant service credentials: the gateway has authenticated the principal and policy allowed it
 * decisions:query; this signs a short-lived token for its tenant. The credential is not looked up
 * again on use, so revoking the API key stops new credentials at once and existing ones within
 * `ttlSeconds`.
 */
export function createServiceTokens({ identity, ttlSeconds }: ServiceTokensDeps): ServiceTokens {
  return {
    async issue({ principal, audience }) {
      if (!principal || !uuid.test(principal.tenantId) || principal.id === '') {
        throw new AppError('INVALID_ARGUMENT', 'a principal of a tenant is required', { details: { field: 'principal' } });
      }
      const wanted = audience === '' ? 'policy' : audience;
      if (!tenantCredentialAudiences.includes(wanted)) {
        throw new AppError('INVALID_ARGUMENT', `service credentials are issued for: ${tenantCredentialAudiences.join(', ')}`, {
          details: { field: 'audience' },
        });
      }
      const { token, expiresAt } = await identity.issueTenantToken({
        audience: wanted,
        tenantId: principal.tenantId,
        subject: subjectOf(principal),
        ttlSeconds,
      });
      return { token, expiresAt, audience: wanted };
    },
  };
}
