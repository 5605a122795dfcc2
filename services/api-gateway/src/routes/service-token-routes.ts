import { AppError, z, type GrpcClient } from '@portcullis/kit';
import type { AuthService } from '@portcullis/proto/auth';
import { isoTime } from '../http/presenters.js';
import { parseInput, type ProtectedRoute } from '../http/route.js';

export interface ServiceTokenRouteDeps {
  auth: Pick<GrpcClient<typeof AuthService>, 'issueServiceToken'>;
}

/**
 * Tenant service credentials: a tenant's own backend exchanges its API key (with the
 * decisions:query scope) for a short-lived token and calls the policy service over gRPC with it
 * (`authorization: Bearer <token>`), about its own tenant only. Answered with no-store like
 * every API response.
 */
export function createServiceTokenRoutes({ auth }: ServiceTokenRouteDeps): ProtectedRoute[] {
  return [
    {
      kind: 'protected',
      method: 'post',
      path: '/api/service-tokens',
      capability: { object: 'decisions', action: 'query' },
      summary: "Exchange this credential for a short-lived service token for the policy service's gRPC API (own tenant only)",
      async handle(context, { body }) {
        const input = parseInput(z.object({ audience: z.enum(['policy']).default('policy') }), body);
        const issued = await auth.issueServiceToken(
          { principal: context.principal, audience: input.audience },
          { requestId: context.request.requestId },
        );
        if (!issued.token) throw new AppError('INTERNAL', 'auth returned no service token');
        return {
          status: 201,
          body: { token: issued.token, tokenType: 'Bearer', audience: issued.audience, expiresAt: isoTime(issued.expiresAt) },
        };
      },
    },
  ];
}
