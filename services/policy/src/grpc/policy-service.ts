import { implement, requireUuid } from '@portcullis/kit';
import { PolicyService } from '@portcullis/proto/policy';
import type { DecisionLibrary } from '../libraries/decisions.js';
import { roleSubject } from '../libraries/role-templates.js';
import { subjectOf } from '../libraries/subjects.js';
import type { RoleAssignmentQueries } from '../queries/role-assignments.js';

export interface PolicyServiceDeps {
  decisions: DecisionLibrary;
  assignments: Pick<RoleAssignmentQueries, 'assign' | 'revoke'>;
  /** Announces a tenant's rule change to every replica (including this one). */
  announceChange(tenantId: string): void;
}

export function createPolicyService({ decisions, assignments, announceChange }: PolicyServiceDeps) {
  const changeRole = async (
    change: 'assign' | 'revoke',
    request: { tenantId: string; userId: string; role: Parameters<typeof roleSubject>[0] },
  ) => {
    const tenantId = requireUuid(request.tenantId, 'tenant_id');
    const subject = `user:${requireUuid(request.userId, 'user_id')}`;
    await assignments[change](tenantId, subject, roleSubject(request.role));
    decisions.invalidate(tenantId);
    announceChange(tenantId);
    return {};
  };

  return implement(PolicyService, {
    async check(request) {
      const tenantId = requireUuid(request.tenantId, 'tenant_id');
      const principal = request.principal;
      if (!principal) return { allowed: false, reason: 'no principal' };
      if (principal.tenantId !== tenantId) return { allowed: false, reason: 'principal belongs to another tenant' };
      return decisions.check({ subject: subjectOf(principal), tenantId, object: request.object, action: request.action });
    },
    assignRole: (request) => changeRole('assign', request),
    revokeRole: (request) => changeRole('revoke', request),
  });
}
