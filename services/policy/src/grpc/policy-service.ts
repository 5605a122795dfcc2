import { implement } from '@portcullis/kit';
import { PolicyService } from '@portcullis/proto/policy';
import type { DecisionLibrary } from '../libraries/decisions.js';
import type { GrantLibrary } from '../libraries/grants.js';

export interface PolicyServiceDeps {
  decisions: Pick<DecisionLibrary, 'check' | 'checkMany' | 'explain' | 'listCapabilities'>;
  grants: GrantLibrary;
}

/** Translates PolicyService calls to the decision and grant libraries; every rule lives there. */
export function createPolicyService({ decisions, grants }: PolicyServiceDeps) {
  return implement(PolicyService, {
    check: (request) => decisions.check(request),
    async batchCheck(request) {
      return { decisions: await decisions.checkMany(request) };
    },
    async explain({ check }) {
      return decisions.explain({
        principal: check?.principal,
        tenantId: check?.tenantId ?? '',
        assistantId: check?.assistantId ?? '',
        object: check?.object ?? '',
        action: check?.action ?? '',
      });
    },
    async listCapabilities(request) {
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
  });
}
