import { randomUUID } from 'node:crypto';
import { requireText, requireUuid } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import { requireHost } from './hosts.js';
import type { AnnounceChange, AssistantRecord, DomainRecord, TeamRecord, TenantRecord } from './records.js';
import type { PolicyRoles } from './roles.js';

const MAX_NAME = 100;

/** Writes inside one tenant; each runs in that tenant's RLS scope and fails NOT_FOUND/ALREADY_EXISTS itself. */
export interface TenantStore {
  /** Inserts an active tenant with the given id and its owner's membership, atomically. */
  insertTenantWithOwner(tenant: { id: string; name: string }, ownerUserId: string): Promise<TenantRecord>;
  /** NOT_FOUND when the tenant does not exist. */
  insertAssistant(tenantId: string, name: string): Promise<AssistantRecord>;
  /** NOT_FOUND when the assistant is not the tenant's; ALREADY_EXISTS when any tenant has the host. */
  insertDomain(tenantId: string, assistantId: string, host: string): Promise<DomainRecord>;
  /** NOT_FOUND when the tenant does not exist. */
  insertTeam(tenantId: string, name: string): Promise<TeamRecord>;
}

export interface TenantLibraryDeps {
  store: TenantStore;
  policy: Pick<PolicyRoles, 'assignRole' | 'revokeRole'>;
  announce: AnnounceChange;
  newId?: () => string;
}

/** Tenants and what they own: assistants, the domains that route to them, teams. */
export function createTenantLibrary({ store, policy, announce, newId = randomUUID }: TenantLibraryDeps) {
  return {
    /**
     * Creates an active tenant whose creator is its owner. The owner role is assigned in the
     * policy service first, under a pre-generated id, so a policy outage fails the call and
     * no tenant ever exists without its owner's role.
     */
    async createTenant(input: { name: string; ownerUserId: string }): Promise<TenantRecord> {
      const name = requireText(input.name, 'name', MAX_NAME);
      const ownerUserId = requireUuid(input.ownerUserId, 'owner_user_id');
      const grant = { tenantId: newId(), userId: ownerUserId, role: Role.OWNER };
      await policy.assignRole(grant);
      let tenant: TenantRecord;
      try {
        tenant = await store.insertTenantWithOwner({ id: grant.tenantId, name }, ownerUserId);
      } catch (error) {
        // The id was never handed out; withdrawing its role is tidiness, not safety.
        await policy.revokeRole(grant).catch(() => undefined);
        throw error;
      }
      announce(tenant.id, 'tenant.created');
      return tenant;
    },

    async createAssistant(input: { tenantId: string; name: string }): Promise<AssistantRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const name = requireText(input.name, 'name', MAX_NAME);
      const assistant = await store.insertAssistant(tenantId, name);
      announce(tenantId, 'assistant.created');
      return assistant;
    },

    /** Routes a host (stored lowercase, without port) to one of the tenant's assistants. */
    async addDomain(input: { tenantId: string; assistantId: string; host: string }): Promise<DomainRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const host = requireHost(input.host);
      const domain = await store.insertDomain(tenantId, assistantId, host);
      announce(tenantId, 'domain.added');
      return domain;
    },

    async createTeam(input: { tenantId: string; name: string }): Promise<TeamRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const name = requireText(input.name, 'name', MAX_NAME);
      const team = await store.insertTeam(tenantId, name);
      announce(tenantId, 'team.created');
      return team;
    },
  };
}

export type TenantLibrary = ReturnType<typeof createTenantLibrary>;
