import { AppError, roleNames, roleOf, z, type GrpcClient } from '@portcullis/kit';
import type { Domain, TenantRegistryService } from '@portcullis/proto/tenant';
import { isoTime, roleName } from '../http/presenters.js';
import { parseInput, type ProtectedRoute } from '../http/route.js';

export interface TenantRouteDeps {
  tenants: Pick<
    GrpcClient<typeof TenantRegistryService>,
    | 'createAssistant'
    | 'addDomain'
    | 'verifyDomain'
    | 'createTeam'
    | 'addMember'
    | 'removeMember'
    | 'listTeams'
    | 'addTeamMember'
    | 'removeTeamMember'
    | 'createChatGroup'
    | 'listChatGroups'
    | 'addChatGroupMember'
    | 'removeChatGroupMember'
    | 'listChatGroupMembers'
  >;
}

const name = z.string().min(1).max(100);
const userIdParam = z.object({ userId: z.uuid() });
const teamIdParam = z.object({ teamId: z.uuid() });
const assistantIdParam = z.object({ assistantId: z.uuid() });
const chatGroupIdParam = z.object({ chatGroupId: z.uuid() });
const domainIdParam = z.object({ domainId: z.uuid() });

/** A domain as the API shows it: whether it routes yet, and the DNS record that proves ownership. */
function presentDomain(domain: Domain | undefined) {
  if (!domain) throw new AppError('INTERNAL', 'tenant registry returned no domain');
  return {
    domainId: domain.id,
    host: domain.host,
    assistantId: domain.assistantId,
    verified: domain.verifiedAt !== undefined,
    verifiedAt: isoTime(domain.verifiedAt),
    verification: { type: 'TXT', name: domain.verification?.recordName ?? '', value: domain.verification?.recordValue ?? '' },
  };
}

export function createTenantRoutes({ tenants }: TenantRouteDeps): ProtectedRoute[] {
  return [
    {
      kind: 'protected',
      method: 'get',
      path: '/api/context',
      capability: { object: 'tenant', action: 'read' },
      summary: 'The tenant, assistant and principal this request resolved to',
      handle({ target, principal }) {
        return Promise.resolve({
          body: {
            tenant: { id: target.tenantId, name: target.tenantName },
            assistantId: target.assistantId || null,
            principal: { id: principal.id, role: roleName(principal.role) },
          },
        });
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/assistants',
      capability: { object: 'assistants', action: 'manage' },
      summary: 'Create an assistant in the tenant',
      async handle({ request, target }, { body }) {
        const input = parseInput(z.object({ name }), body);
        const { assistant } = await tenants.createAssistant(
          { tenantId: target.tenantId, name: input.name },
          { requestId: request.requestId },
        );
        if (!assistant) throw new AppError('INTERNAL', 'tenant registry returned no assistant');
        return { status: 201, body: { assistantId: assistant.id, name: assistant.name } };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/assistants/:assistantId/domains',
      capability: { object: 'assistants', action: 'manage' },
      summary: 'Claim a domain for an assistant of the tenant; it routes once verified (publish the TXT record in the answer)',
      async handle({ request, target }, { body, params }) {
        const { assistantId } = parseInput(z.object({ assistantId: z.uuid() }), params);
        const input = parseInput(z.object({ host: z.string().min(1).max(253) }), body);
        const { domain } = await tenants.addDomain(
          { tenantId: target.tenantId, assistantId, host: input.host },
          { requestId: request.requestId },
        );
        return { status: 201, body: presentDomain(domain) };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/domains/:domainId/verify',
      capability: { object: 'assistants', action: 'manage' },
      summary: "Verify a domain's ownership now (its TXT record); verified, it routes to its assistant",
      async handle({ request, target }, { params }) {
        const { domainId } = parseInput(domainIdParam, params);
        const { domain } = await tenants.verifyDomain({ tenantId: target.tenantId, domainId }, { requestId: request.requestId });
        return { body: presentDomain(domain) };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/teams',
      capability: { object: 'teams', action: 'manage' },
      summary: 'Create a team in the tenant',
      async handle({ request, target }, { body }) {
        const input = parseInput(z.object({ name }), body);
        const { team } = await tenants.createTeam({ tenantId: target.tenantId, name: input.name }, { requestId: request.requestId });
        if (!team) throw new AppError('INTERNAL', 'tenant registry returned no team');
        return { status: 201, body: { teamId: team.id, name: team.name } };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/members',
      capability: { object: 'members', action: 'manage' },
      summary: 'Add an account to the tenant with a role',
      async handle({ request, target, principal }, { body }) {
        const input = parseInput(z.object({ userId: z.uuid(), role: z.enum(roleNames) }), body);
        const { membership } = await tenants.addMember(
          { tenantId: target.tenantId, userId: input.userId, role: roleOf(input.role), actor: principal },
          { requestId: request.requestId },
        );
        if (!membership) throw new AppError('INTERNAL', 'tenant registry returned no membership');
        return { status: 201, body: { userId: membership.userId, role: roleName(membership.role) } };
      },
    },
    {
      kind: 'protected',
      method: 'delete',
      path: '/api/members/:userId',
      capability: { object: 'members', action: 'manage' },
      // The registry decides by the actor's stored role, so the actor must be a person.
      humansOnly: true,
      summary: 'Remove an account from the tenant (owners remove admins and users, admins only users; never an owner)',
      async handle({ request, target, principal }, { params }) {
        const { userId } = parseInput(userIdParam, params);
        await tenants.removeMember({ tenantId: target.tenantId, userId, actor: principal }, { requestId: request.requestId });
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'get',
      path: '/api/teams',
      capability: { object: 'tenant', action: 'read' },
      summary: "The tenant's teams, by name",
      async handle({ request, target }) {
        const { teams } = await tenants.listTeams({ tenantId: target.tenantId }, { requestId: request.requestId });
        return { body: { teams: teams.map((team) => ({ teamId: team.id, name: team.name })) } };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/teams/:teamId/members',
      capability: { object: 'teams', action: 'manage' },
      summary: 'Put a member of the tenant into a team (idempotent)',
      async handle({ request, target, principal }, { body, params }) {
        const { teamId } = parseInput(teamIdParam, params);
        const { userId } = parseInput(userIdParam, body);
        await tenants.addTeamMember({ tenantId: target.tenantId, teamId, userId, actor: principal }, { requestId: request.requestId });
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'delete',
      path: '/api/teams/:teamId/members/:userId',
      capability: { object: 'teams', action: 'manage' },
      summary: 'Take a member out of a team',
      async handle({ request, target, principal }, { params }) {
        const { teamId, userId } = parseInput(teamIdParam.extend(userIdParam.shape), params);
        await tenants.removeTeamMember({ tenantId: target.tenantId, teamId, userId, actor: principal }, { requestId: request.requestId });
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/assistants/:assistantId/chat-groups',
      capability: { object: 'teams', action: 'manage' },
      summary: 'Create a chat group in an assistant of the tenant',
      async handle({ request, target, principal }, { body, params }) {
        const { assistantId } = parseInput(assistantIdParam, params);
        const input = parseInput(z.object({ name }), body);
        const { chatGroup } = await tenants.createChatGroup(
          { tenantId: target.tenantId, assistantId, name: input.name, actor: principal },
          { requestId: request.requestId },
        );
        if (!chatGroup) throw new AppError('INTERNAL', 'tenant registry returned no chat group');
        return { status: 201, body: { chatGroupId: chatGroup.id, name: chatGroup.name } };
      },
    },
    {
      kind: 'protected',
      method: 'get',
      path: '/api/assistants/:assistantId/chat-groups',
      capability: { object: 'tenant', action: 'read' },
      summary: "An assistant's chat groups, by name",
      async handle({ request, target }, { params }) {
        const { assistantId } = parseInput(assistantIdParam, params);
        const { chatGroups } = await tenants.listChatGroups({ tenantId: target.tenantId, assistantId }, { requestId: request.requestId });
        return { body: { chatGroups: chatGroups.map((group) => ({ chatGroupId: group.id, name: group.name })) } };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/chat-groups/:chatGroupId/members',
      capability: { object: 'teams', action: 'manage' },
      summary: 'Put a member of the tenant into a chat group (idempotent)',
      async handle({ request, target, principal }, { body, params }) {
        const { chatGroupId } = parseInput(chatGroupIdParam, params);
        const { userId } = parseInput(userIdParam, body);
        await tenants.addChatGroupMember(
          { tenantId: target.tenantId, chatGroupId, userId, actor: principal },
          { requestId: request.requestId },
        );
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'delete',
      path: '/api/chat-groups/:chatGroupId/members/:userId',
      capability: { object: 'teams', action: 'manage' },
      summary: 'Take a member out of a chat group',
      async handle({ request, target, principal }, { params }) {
        const { chatGroupId, userId } = parseInput(chatGroupIdParam.extend(userIdParam.shape), params);
        await tenants.removeChatGroupMember(
          { tenantId: target.tenantId, chatGroupId, userId, actor: principal },
          { requestId: request.requestId },
        );
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'get',
      path: '/api/chat-groups/:chatGroupId/members',
      capability: { object: 'tenant', action: 'read' },
      summary: 'The user ids in a chat group',
      async handle({ request, target }, { params }) {
        const { chatGroupId } = parseInput(chatGroupIdParam, params);
        const { userIds } = await tenants.listChatGroupMembers(
          { tenantId: target.tenantId, chatGroupId },
          { requestId: request.requestId },
        );
        return { body: { userIds } };
      },
    },
  ];
}
