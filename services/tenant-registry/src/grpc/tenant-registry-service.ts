import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AppError, implement, onlyServices, PLATFORM_OPS } from '@portcullis/kit';
import { PrincipalKind, TenantStatus, type Principal } from '@portcullis/proto/common';
import { TenantRegistryService } from '@portcullis/proto/tenant';
import type { ChatGroupLibrary } from '../libraries/chat-groups.js';
import type { ContextResolver } from '../libraries/context-resolution.js';
import type { MembershipLibrary } from '../libraries/memberships.js';
import { challengeFor } from '../libraries/domain-ownership.js';
import type { DomainRecord, MembershipRecord, TenantRecord, TenantStatusName } from '../libraries/records.js';
import { roleOf } from '../libraries/roles.js';
import type { TeamLibrary } from '../libraries/teams.js';
import type { TenantLibrary } from '../libraries/tenants.js';

function domainOf(domain: DomainRecord) {
  return {
    id: domain.id,
    tenantId: domain.tenantId,
    assistantId: domain.assistantId,
    host: domain.host,
    ...(domain.verifiedAt ? { verifiedAt: timestampFromDate(domain.verifiedAt) } : {}),
    verification: challengeFor(domain.host, domain.verificationToken),
  };
}

export interface TenantRegistryServiceDeps {
  tenants: TenantLibrary;
  memberships: MembershipLibrary;
  teams: TeamLibrary;
  chatGroups: ChatGroupLibrary;
  contexts: ContextResolver;
}

function tenantStatusOf(status: TenantStatusName): TenantStatus {
  switch (status) {
    case 'active':
      return TenantStatus.ACTIVE;
    case 'suspended':
      return TenantStatus.SUSPENDED;
  }
}

/** The stored status a request asks for; UNSPECIFIED or an unknown value is INVALID_ARGUMENT. */
function statusNameOf(status: TenantStatus): TenantStatusName {
  switch (status) {
    case TenantStatus.ACTIVE:
      return 'active';
    case TenantStatus.SUSPENDED:
      return 'suspended';
    case TenantStatus.UNSPECIFIED:
      break;
  }
  throw new AppError('INVALID_ARGUMENT', 'status is required (active or suspended)', { details: { field: 'status' } });
}

const tenantMessage = (tenant: TenantRecord) => ({ ...tenant, status: tenantStatusOf(tenant.status) });

/**
 * The person making a membership change: a principal of the request's tenant. Their stored
 * role (not one they claim) then decides what they may do.
 */
function actorOf(actor: Principal | undefined, tenantId: string, { people }: { people: boolean }): Principal {
  if (!actor || actor.tenantId !== tenantId) {
    throw new AppError('PERMISSION_DENIED', 'a principal of this tenant must make membership changes');
  }
  if (people && actor.kind !== PrincipalKind.USER) {
    throw new AppError('PERMISSION_DENIED', 'only a signed-in person may remove members');
  }
  return actor;
}

const membershipMessage = ({ memberSince, ...membership }: MembershipRecord) => ({
  ...membership,
  role: roleOf(membership.role),
  memberSince: timestampFromDate(memberSince),
});

/**
 * The gateway and auth call tenant-registry; suspending a tenant or changing its plan is a
 * platform operation, open only to operators (the platform-ops identity).
 */
export const tenantRegistryAccess = {
  default: onlyServices('api-gateway', 'auth', PLATFORM_OPS),
  setTenantStatus: onlyServices(PLATFORM_OPS),
  setTenantPlan: onlyServices(PLATFORM_OPS),
};

/** Translates TenantRegistryService calls to library calls; validation lives in the libraries. */
export function createTenantRegistryService({ tenants, memberships, teams, chatGroups, contexts }: TenantRegistryServiceDeps) {
  return implement(
    TenantRegistryService,
    {
      async createTenant(request) {
        const tenant = await tenants.createTenant({ name: request.name, ownerUserId: request.ownerUserId });
        return { tenant: tenantMessage(tenant) };
      },
      async createAssistant(request) {
        return { assistant: await tenants.createAssistant({ tenantId: request.tenantId, name: request.name }) };
      },
      async addDomain(request) {
        return {
          domain: domainOf(await tenants.addDomain({ tenantId: request.tenantId, assistantId: request.assistantId, host: request.host })),
        };
      },
      async verifyDomain(request) {
        return { domain: domainOf(await tenants.verifyDomain({ tenantId: request.tenantId, domainId: request.domainId })) };
      },
      async moveDomain(request) {
        return {
          domain: domainOf(
            await tenants.moveDomain({ tenantId: request.tenantId, domainId: request.domainId, assistantId: request.assistantId }),
          ),
        };
      },
      // Platform operations: no gateway route reaches these two; only operators on the internal
      // network may (see README, "Platform operations").
      async setTenantStatus(request) {
        const tenant = await tenants.setTenantStatus({ tenantId: request.tenantId, status: statusNameOf(request.status) });
        return { tenant: tenantMessage(tenant) };
      },
      async setTenantPlan(request) {
        await tenants.setTenantPlan({ tenantId: request.tenantId, plan: request.plan });
        return {};
      },
      async createTeam(request) {
        return { team: await tenants.createTeam({ tenantId: request.tenantId, name: request.name }) };
      },
      async addMember(request) {
        const actor = actorOf(request.actor, request.tenantId, { people: false });
        const membership = await memberships.addMember({ tenantId: request.tenantId, userId: request.userId, role: request.role, actor });
        return { membership: membershipMessage(membership) };
      },
      async removeMember(request) {
        const actor = actorOf(request.actor, request.tenantId, { people: true });
        await memberships.removeMember({ tenantId: request.tenantId, userId: request.userId, actor });
        return {};
      },
      async addTeamMember(request) {
        const actor = actorOf(request.actor, request.tenantId, { people: false });
        await teams.addTeamMember({ tenantId: request.tenantId, teamId: request.teamId, userId: request.userId, actorUserId: actor.id });
        return {};
      },
      async removeTeamMember(request) {
        const actor = actorOf(request.actor, request.tenantId, { people: false });
        await teams.removeTeamMember({ tenantId: request.tenantId, teamId: request.teamId, userId: request.userId, actorUserId: actor.id });
        return {};
      },
      async listTeams(request) {
        return { teams: await teams.listTeams({ tenantId: request.tenantId }) };
      },
      async listUserTeams(request) {
        return { teams: await teams.listUserTeams({ tenantId: request.tenantId, userId: request.userId }) };
      },
      async createChatGroup(request) {
        const actor = actorOf(request.actor, request.tenantId, { people: false });
        const chatGroup = await chatGroups.createChatGroup({
          tenantId: request.tenantId,
          assistantId: request.assistantId,
          name: request.name,
          actorUserId: actor.id,
        });
        return { chatGroup };
      },
      async listChatGroups(request) {
        return { chatGroups: await chatGroups.listChatGroups({ tenantId: request.tenantId, assistantId: request.assistantId }) };
      },
      async addChatGroupMember(request) {
        const actor = actorOf(request.actor, request.tenantId, { people: false });
        const { tenantId, chatGroupId, userId } = request;
        await chatGroups.addChatGroupMember({ tenantId, chatGroupId, userId, actorUserId: actor.id });
        return {};
      },
      async removeChatGroupMember(request) {
        const actor = actorOf(request.actor, request.tenantId, { people: false });
        const { tenantId, chatGroupId, userId } = request;
        await chatGroups.removeChatGroupMember({ tenantId, chatGroupId, userId, actorUserId: actor.id });
        return {};
      },
      async listChatGroupMembers(request) {
        return { userIds: await chatGroups.listChatGroupMembers({ tenantId: request.tenantId, chatGroupId: request.chatGroupId }) };
      },
      async getMembership(request) {
        const membership = await memberships.getMembership({ tenantId: request.tenantId, userId: request.userId });
        return { membership: membershipMessage(membership) };
      },
      async listUserTenants(request) {
        const list = await memberships.listUserTenants({ userId: request.userId });
        return { memberships: list.map(membershipMessage) };
      },
      async resolveContext(request) {
        const context = await contexts.resolve({ host: request.host, assistantId: request.assistantId, tenantId: request.tenantId });
        return { context: { ...context, tenantStatus: tenantStatusOf(context.tenantStatus) } };
      },
    },
    tenantRegistryAccess,
  );
}
