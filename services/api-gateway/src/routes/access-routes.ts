import { AppError, capabilityNamePattern, roleNames, roleOf, z, type GrpcClient } from '@portcullis/kit';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import type { PolicyService } from '@portcullis/proto/policy';
import type { TenantRegistryService } from '@portcullis/proto/tenant';
import { parseInput, type ProtectedRoute } from '../http/route.js';
import type { AuthorizedContext } from '../pipeline/index.js';

export interface AccessRouteDeps {
  policy: Pick<GrpcClient<typeof PolicyService>, 'listCapabilities' | 'assignRole' | 'revokeRole' | 'grantPermission' | 'revokePermission'>;
  tenants: Pick<GrpcClient<typeof TenantRegistryService>, 'resolveContext' | 'getMembership'>;
}

const userIdParam = z.object({ userId: z.uuid() });
const assistantParams = z.object({ assistantId: z.uuid(), userId: z.uuid() });
const capability = z.string().regex(capabilityNamePattern, 'a capability object:action, e.g. tools:invoke');

/**
 * Whom a credential's capabilities are listed for: people and robots as themselves (policy
 * caps a robot by its creator); an API key as the person it acts for, within its scopes.
 */
function subjectOf({ principal, credential }: AuthorizedContext): { subject: Principal; scopes: readonly string[] | undefined } {
  if (credential.kind !== 'api_key') return { subject: principal, scopes: undefined };
  const actingUser = credential.keyKind === 'user' ? credential.userId : credential.createdBy;
  return { subject: { ...principal, kind: PrincipalKind.USER, id: actingUser, role: Role.UNSPECIFIED }, scopes: credential.scopes };
}

/**
 * Who may do what: the caller's own capabilities (what the console shows), roles held on one
 * assistant, and single per-user permissions. The policy service decides who may grant what
 * (owners anything, admins only the user role) from its own stored roles; the gateway checks
 * that the assistant is the tenant's and the user a member, so no grant names a stranger.
 */
export function createAccessRoutes({ policy, tenants }: AccessRouteDeps): ProtectedRoute[] {
  /** NOT_FOUND unless the assistant belongs to the request's tenant. */
  async function assertAssistantOfTenant(context: AuthorizedContext, assistantId: string): Promise<void> {
    const found = await tenants
      .resolveContext({ assistantId }, { requestId: context.request.requestId })
      .then(({ context: resolved }) => resolved?.tenantId)
      .catch((error: unknown) => {
        if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
        throw error;
      });
    if (found !== context.target.tenantId) throw new AppError('NOT_FOUND', 'assistant not found');
  }

  async function assertMember(context: AuthorizedContext, userId: string): Promise<void> {
    await tenants.getMembership({ tenantId: context.target.tenantId, userId }, { requestId: context.request.requestId });
  }

  return [
    {
      kind: 'protected',
      method: 'get',
      path: '/api/capabilities',
      capability: { object: 'tenant', action: 'read' },
      summary: 'The capabilities the caller holds on the resolved assistant (tenant-wide without one)',
      async handle(context) {
        const { subject, scopes } = subjectOf(context);
        const { capabilities } = await policy.listCapabilities(
          { principal: subject, tenantId: context.target.tenantId, assistantId: context.target.assistantId },
          { requestId: context.request.requestId },
        );
        return {
          body: {
            assistantId: context.target.assistantId || null,
            capabilities: scopes === undefined ? capabilities : capabilities.filter((name) => scopes.includes(name)),
          },
        };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/assistants/:assistantId/roles',
      capability: { object: 'members', action: 'manage' },
      humansOnly: true,
      summary: 'Give a member of the tenant a role on one assistant',
      async handle(context, { body, params }) {
        const { assistantId } = parseInput(z.object({ assistantId: z.uuid() }), params);
        const input = parseInput(z.object({ userId: z.uuid(), role: z.enum(roleNames) }), body);
        await assertAssistantOfTenant(context, assistantId);
        await assertMember(context, input.userId);
        await policy.assignRole(
          { tenantId: context.target.tenantId, userId: input.userId, role: roleOf(input.role), assistantId, actor: context.principal },
          { requestId: context.request.requestId },
        );
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'delete',
      path: '/api/assistants/:assistantId/roles/:userId/:role',
      capability: { object: 'members', action: 'manage' },
      humansOnly: true,
      summary: "Take back a member's role on one assistant",
      async handle(context, { params }) {
        const input = parseInput(assistantParams.extend({ role: z.enum(roleNames) }), params);
        await assertAssistantOfTenant(context, input.assistantId);
        await policy.revokeRole(
          {
            tenantId: context.target.tenantId,
            userId: input.userId,
            role: roleOf(input.role),
            assistantId: input.assistantId,
            actor: context.principal,
          },
          { requestId: context.request.requestId },
        );
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/members/:userId/permissions',
      capability: { object: 'members', action: 'manage' },
      humansOnly: true,
      summary: 'Give a member one capability, tenant-wide or on one assistant, on top of their role',
      async handle(context, { body, params }) {
        const { userId } = parseInput(userIdParam, params);
        const input = parseInput(z.object({ capability, assistantId: z.uuid().optional() }), body);
        const assistantId = input.assistantId ?? '';
        if (assistantId) await assertAssistantOfTenant(context, assistantId);
        await assertMember(context, userId);
        const [object = '', action = ''] = input.capability.split(':');
        await policy.grantPermission(
          { tenantId: context.target.tenantId, userId, assistantId, object, action, actor: context.principal },
          { requestId: context.request.requestId },
        );
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'delete',
      path: '/api/members/:userId/permissions/:capability',
      capability: { object: 'members', action: 'manage' },
      humansOnly: true,
      summary: 'Take back a per-user capability (query assistantId for one held on an assistant)',
      async handle(context, { params, query }) {
        const input = parseInput(userIdParam.extend({ capability }), params);
        const { assistantId = '' } = parseInput(z.object({ assistantId: z.uuid().optional() }), query);
        const [object = '', action = ''] = input.capability.split(':');
        await policy.revokePermission(
          { tenantId: context.target.tenantId, userId: input.userId, assistantId, object, action, actor: context.principal },
          { requestId: context.request.requestId },
        );
        return { status: 204, body: null };
      },
    },
  ];
}
