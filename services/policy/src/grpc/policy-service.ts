import { implement, onlyServices, PLATFORM_OPS, platformServiceOrTenant, requireCallerTenant, type Counter } from '@portcullis/kit';
import { PolicyService } from '@portcullis/proto/policy';
import type { DecisionLibrary } from '../libraries/decisions.js';
import type { GrantLibrary } from '../libraries/grants.js';

export interface PolicyServiceDeps {
  decisions: Pick<DecisionLibrary, 'check' | 'checkMany' | 'explain' | 'listCapabilities'>;
  grants: GrantLibrary;
  /** Counts every decision Check and BatchCheck answer, `portcullis_policy_decisions_total{outcome,rpc}`. */
  decisionsCounted?: Pick<Counter<'outcome' | 'rpc'>, 'inc'>;
}

/**
 * Translates PolicyService calls to the decision and grant libraries; every rule lives there.
 * Decisions are open to platform services and to a tenant's own backend (a tenant service
 * credential from auth), which may only ask about its own tenant. Grants come only from
 * tenant-registry (memberships), the gateway (per-assistant roles, permissions) and operators;
 * a plan only from tenant-registry, which stores it.
 */
export function createPolicyService({ decisions, grants, decisionsCounted }: PolicyServiceDeps) {
  const count = (rpc: 'Check' | 'BatchCheck', { allowed }: { allowed: boolean }) =>
    decisionsCounted?.inc({ outcome: allowed ? 'allow' : 'deny', rpc });
  const grantors = onlyServices('tenant-registry', 'api-gateway', PLATFORM_OPS);
  const access = {
    default: onlyServices(),
    check: platformServiceOrTenant,
    batchCheck: platformServiceOrTenant,
    explain: platformServiceOrTenant,
    listCapabilities: platformServiceOrTenant,
    assignRole: grantors,
    revokeRole: grantors,
    grantPermission: grantors,
    revokePermission: grantors,
    setTenantPlan: onlyServices('tenant-registry'),
  };
  return implement(
    PolicyService,
    {
      async check(request, { caller }) {
        requireCallerTenant(caller, request.tenantId);
        const decision = await decisions.check(request);
        count('Check', decision);
        return decision;
      },
      async batchCheck(request, { caller }) {
        requireCallerTenant(caller, request.tenantId);
        const answers = await decisions.checkMany(request);
        for (const answer of answers) count('BatchCheck', answer);
        return { decisions: answers };
      },
      async explain({ check }, { caller }) {
        requireCallerTenant(caller, check?.tenantId ?? '');
        return decisions.explain({
          principal: check?.principal,
          tenantId: check?.tenantId ?? '',
          assistantId: check?.assistantId ?? '',
          object: check?.object ?? '',
          action: check?.action ?? '',
        });
      },
      async listCapabilities(request, { caller }) {
        requireCallerTenant(caller, request.tenantId);
        return { capabilities: await decisions.listCapabilities(request) };
      },
      async assignRole(request) {
        await grants.assignRole(request);
        return {};
      },
      async revokeRole(request) {
        await grants.revokeRole(request);
        return {};
      },
      async grantPermission(request) {
        await grants.grantPermission(request);
        return {};
      },
      async revokePermission(request) {
        await grants.revokePermission(request);
        return {};
      },
      async setTenantPlan(request) {
        await grants.setTenantPlan(request);
        return {};
      },
    },
    access,
  );
}
