import { randomUUID } from 'node:crypto';
import { AppError, requireHost, requireText, requireUuid, type AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import type { AnnounceChange, AssistantRecord, DomainRecord, TeamRecord, TenantRecord, TenantStatusName } from './records.js';
import type { DomainOwnership } from './domain-ownership.js';
import type { PolicyRoles, PolicyPlans } from './roles.js';

const MAX_NAME = 100;
/** The plan every tenant starts on. */
export const INITIAL_PLAN = 'free';
/** A plan name: lowercase letters, digits, `-` and `_`, starting with a letter, at most 32 characters. */
const PLAN_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** The plan name, trimmed, or INVALID_ARGUMENT; whether such a plan exists is the policy service's answer. */
export function requirePlanName(raw: string): string {
  const plan = raw.trim();
  if (!PLAN_NAME.test(plan)) {
    throw new AppError('INVALID_ARGUMENT', 'plan must be a plan name such as "free" or "pro"', { details: { field: 'plan' } });
  }
  return plan;
}

/** Writes inside one tenant; each runs in that tenant's RLS scope and fails NOT_FOUND/ALREADY_EXISTS itself. */
export interface TenantStore {
  /** Inserts an active tenant with the given id and plan and its owner's membership, atomically. */
  insertTenantWithOwner(tenant: { id: string; name: string; plan: string }, ownerUserId: string): Promise<TenantRecord>;
  /** NOT_FOUND when the tenant does not exist. */
  insertAssistant(tenantId: string, name: string): Promise<AssistantRecord>;
  /**
   * NOT_FOUND when the assistant is not the tenant's; ALREADY_EXISTS when the tenant has already
   * claimed the host, or (inserting it verified) another tenant holds it verified.
   */
  insertDomain(domain: {
    tenantId: string;
    assistantId: string;
    host: string;
    verificationToken: string;
    verified: boolean;
  }): Promise<DomainRecord>;
  /** NOT_FOUND when the domain is not the tenant's. */
  findDomain(tenantId: string, domainId: string): Promise<DomainRecord>;
  /** Marks the domain verified now; ALREADY_EXISTS when another tenant holds the host verified. */
  markDomainVerified(tenantId: string, domainId: string): Promise<DomainRecord>;
  /** NOT_FOUND when the tenant does not exist. */
  insertTeam(tenantId: string, name: string): Promise<TeamRecord>;
  /** Points one of the tenant's domains at another of its assistants; NOT_FOUND when either is not the tenant's. */
  moveDomain(tenantId: string, domainId: string, assistantId: string): Promise<DomainRecord>;
  /** NOT_FOUND when the tenant does not exist. */
  setStatus(tenantId: string, status: TenantStatusName): Promise<TenantRecord>;
  /**
   * Stores the plan with the tenant's row locked: `confirm` runs first, inside the lock, with the
   * tenant as it is, and the plan is stored only if it returns. NOT_FOUND when the tenant does not exist.
   */
  setPlan(tenantId: string, plan: string, confirm: (current: TenantRecord) => Promise<void>): Promise<TenantRecord>;
}

export interface TenantLibraryDeps {
  store: TenantStore;
  ownership: DomainOwnership;
  policy: Pick<PolicyRoles, 'assignRole' | 'revokeRole'> & PolicyPlans;
  announce: AnnounceChange;
  /** Where a new tenant's first membership, its creator as owner, is recorded (`member.added`). */
  audit: Pick<AuditPublisher, 'publish'>;
  newId?: () => string;
}

/** Tenants and what they own: assistants, the domains that route to them, teams. */
export function createTenantLibrary({ store, ownership, policy, announce, audit, newId = randomUUID }: TenantLibraryDeps) {
  return {
    /**
     * Creates an active tenant whose creator is its owner, on the `free` plan. The policy
     * service is told the plan and assigns the owner role first, under a pre-generated id, so
     * a policy outage fails the call and no tenant ever exists without its owner's role or
     * with a plan the policy service does not hold. The plan is sent explicitly rather than
     * left to the policy service's default, which is configurable (POLICY_DEFAULT_PLAN) and
     * could otherwise differ from what is stored here. The owner is the tenant's first, the
     * one grant the policy service takes without an actor.
     */
    async createTenant(input: { name: string; ownerUserId: string }): Promise<TenantRecord> {
      const name = requireText(input.name, 'name', MAX_NAME);
      const ownerUserId = requireUuid(input.ownerUserId, 'owner_user_id');
      const grant = { tenantId: newId(), userId: ownerUserId, role: Role.OWNER };
      // A plan under an id nothing will ever resolve is harmless should the assignment fail.
      await policy.setTenantPlan({ tenantId: grant.tenantId, plan: INITIAL_PLAN });
      await policy.assignRole(grant);
      let tenant: TenantRecord;
      try {
        tenant = await store.insertTenantWithOwner({ id: grant.tenantId, name, plan: INITIAL_PLAN }, ownerUserId);
      } catch (error) {
        // The id was never handed out; withdrawing its role is tidiness, not safety. (The policy
        // service may refuse it — without an actor only a first owner is assigned, and a tenant
        // keeps its last owner — leaving a grant under an id that nothing will ever resolve.)
        await policy.revokeRole(grant).catch(() => undefined);
        throw error;
      }
      announce(tenant.id, 'tenant.created');
      await audit.publish({
        tenantId: tenant.id,
        kind: 'member.added',
        principal: { kind: PrincipalKind.USER, id: ownerUserId, tenantId: tenant.id, role: Role.OWNER },
        object: 'members',
        action: 'add',
        outcome: Outcome.SUCCESS,
        reason: 'created the tenant',
        attributes: { user_id: ownerUserId, role: 'owner' },
      });
      return tenant;
    },

    async createAssistant(input: { tenantId: string; name: string }): Promise<AssistantRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const name = requireText(input.name, 'name', MAX_NAME);
      const assistant = await store.insertAssistant(tenantId, name);
      announce(tenantId, 'assistant.created');
      return assistant;
    },

    /**
     * Claims a host (stored lowercase, without port) for an assistant. It routes nothing until verified (verifyDomain), unless the
     * host is under an exempt suffix; any number of tenants may hold an unverified claim.
     */
    async addDomain(input: { tenantId: string; assistantId: string; host: string }): Promise<DomainRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const host = requireHost(input.host);
      const verified = ownership.isExempt(host);
      const domain = await store.insertDomain({ tenantId, assistantId, host, verificationToken: ownership.newToken(), verified });
      if (verified) announce(tenantId, 'domain.added');
      return domain;
    },

    /**
     * Proves the tenant owns the domain's host (its challenge TXT record, looked up now); from then
     * on the host resolves to the domain's assistant. Verifying a verified domain changes nothing.
     */
    async verifyDomain(input: { tenantId: string; domainId: string }): Promise<DomainRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const domainId = requireUuid(input.domainId, 'domain_id');
      const domain = await store.findDomain(tenantId, domainId);
      if (domain.verifiedAt) return domain;
      await ownership.prove(domain.host, domain.verificationToken);
      const verified = await store.markDomainVerified(tenantId, domainId);
      announce(tenantId, 'domain.verified');
      return verified;
    },

    /** Routes one of the tenant's domains to another of its assistants. */
    async moveDomain(input: { tenantId: string; domainId: string; assistantId: string }): Promise<DomainRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const domainId = requireUuid(input.domainId, 'domain_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const domain = await store.moveDomain(tenantId, domainId, assistantId);
      announce(tenantId, 'domain.moved');
      return domain;
    },

    /**
     * Suspends or reactivates a tenant (platform operations). A suspended tenant resolves to
     * TENANT_SUSPENDED everywhere once the change notice has reached the caches.
     */
    async setTenantStatus(input: { tenantId: string; status: TenantStatusName }): Promise<TenantRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const tenant = await store.setStatus(tenantId, input.status);
      announce(tenantId, 'tenant.status.changed');
      return tenant;
    },

    /**
     * Changes the tenant's plan (platform operations). The policy service is told first and
     * decides whether the plan exists (INVALID_ARGUMENT otherwise); the plan is stored only
     * after it accepted, with the tenant's row locked so concurrent changes cannot leave the two
     * disagreeing. Should storing fail after the policy service accepted, it is given the
     * previous plan back.
     */
    async setTenantPlan(input: { tenantId: string; plan: string }): Promise<TenantRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const plan = requirePlanName(input.plan);
      const accepted: { previous?: TenantRecord } = {};
      let tenant: TenantRecord;
      try {
        tenant = await store.setPlan(tenantId, plan, async (current) => {
          await policy.setTenantPlan({ tenantId, plan });
          accepted.previous = current;
        });
      } catch (error) {
        const { previous } = accepted;
        if (previous && previous.plan !== plan) {
          await policy.setTenantPlan({ tenantId, plan: previous.plan }).catch(() => undefined);
        }
        throw error;
      }
      announce(tenantId, 'tenant.plan.changed');
      return tenant;
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
