import { AppError, implement, requireUuid } from '@portcullis/kit';
import { PrincipalKind } from '@portcullis/proto/common';
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
      // Validates kind and id of every principal, robots included.
      const subject = subjectOf(principal);
      if (principal.kind === PrincipalKind.ROBOT) {
        // A robot is decided by the robot template and its creator's rights, never by roles of its own.
        if (principal.actingUserId.length === 0) {
          throw new AppError('INVALID_ARGUMENT', 'principal.acting_user_id (the robot creator) is required for a robot', {
            details: { field: 'principal.acting_user_id' },
          });
        }
        const actingUserId = requireUuid(principal.actingUserId, 'principal.acting_user_id');
        return decisions.checkRobot({ actingUserId, tenantId, object: request.object, action: request.action });
      }
      return decisions.check({ subject, tenantId, object: request.object, action: request.action });
    },
    assignRole: (request) => changeRole('assign', request),
    revokeRole: (request) => changeRole('revoke', request),
  });
}
