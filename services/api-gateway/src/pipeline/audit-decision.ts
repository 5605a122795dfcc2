import type { AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import type { Principal } from '@portcullis/proto/common';
import type { Capability, RequestInfo, TenantTarget } from './types.js';

export interface DecisionRecord {
  request: RequestInfo;
  target: TenantTarget;
  principal: Principal | undefined;
  capability: Capability | undefined;
  allowed: boolean;
  reason: string;
}

/** Publishes one authorization decision (allow or deny) to the tenant's audit trail. */
export function createDecisionAuditor(audit: Pick<AuditPublisher, 'publish'>) {
  return async function auditDecision({ request, target, principal, capability, allowed, reason }: DecisionRecord): Promise<void> {
    await audit.publish({
      tenantId: target.tenantId,
      kind: 'authz.decision',
      principal,
      assistantId: target.assistantId,
      object: capability?.object ?? '',
      action: capability?.action ?? '',
      outcome: allowed ? Outcome.ALLOW : Outcome.DENY,
      reason,
      requestId: request.requestId,
    });
  };
}

export type DecisionAuditor = ReturnType<typeof createDecisionAuditor>;
