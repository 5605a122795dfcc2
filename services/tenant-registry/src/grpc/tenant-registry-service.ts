import { implement } from '@portcullis/kit';
import { AppError } from '@portcullis/kit';
import { TenantStatus } from '@portcullis/proto/common';
import { TenantRegistryService } from '@portcullis/proto/tenant';
import type { ContextResolver } from '../libraries/context-resolution.js';
import type { MembershipLibrary } from '../libraries/memberships.js';
import type { MembershipRecord, TenantStatusName } from '../libraries/records.js';
import { roleOf } from '../libraries/roles.js';
import type { TenantLibrary } from '../libraries/tenants.js';

export interface TenantRegistryServiceDeps {
  tenants: TenantLibrary;
  memberships: MembershipLibrary;
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

const membershipMessage = (membership: MembershipRecord) => ({ ...membership, role: roleOf(membership.role) });

/** Translates TenantRegistryService calls to library calls; validation lives in the libraries. */
export function createTenantRegistryService({ tenants, memberships, contexts }: TenantRegistryServiceDeps) {
  return implement(TenantRegistryService, {
    async createTenant(request) {
      const tenant = await tenants.createTenant({ name: request.name, ownerUserId: request.ownerUserId });
      return { tenant: { ...tenant, status: tenantStatusOf(tenant.status) } };
    },
    async createAssistant(request) {
      return { assistant: await tenants.createAssistant({ tenantId: request.tenantId, name: request.name }) };
    },
    async addDomain(request) {
      return { domain: await tenants.addDomain({ tenantId: request.tenantId, assistantId: request.assistantId, host: request.host }) };
    },
    async createTeam(request) {
      return { team: await tenants.createTeam({ tenantId: request.tenantId, name: request.name }) };
    },
    async addMember(request) {
      if (!request.actor || request.actor.tenantId !== request.tenantId) {
        throw new AppError('PERMISSION_DENIED', 'a principal of this tenant must make membership changes');
      }
      const membership = await memberships.addMember({
        tenantId: request.tenantId,
        userId: request.userId,
        role: request.role,
        actorUserId: request.actor.id,
      });
      return { membership: membershipMessage(membership) };
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
  });
}
