import type { AuditEventInit, AuditPublisher } from './audit/audit-publisher.js';
import { AppError } from './errors.js';
import type { Logger } from './logger.js';

/** What an operator needs to restore a record by hand: the event without its id, trace and time. */
function describeEvent(init: AuditEventInit) {
  return {
    tenantId: init.tenantId,
    kind: init.kind,
    principal: init.principal ? { kind: init.principal.kind, id: init.principal.id } : undefined,
    assistantId: init.assistantId,
    object: init.object,
    action: init.action,
    outcome: init.outcome,
    reason: init.reason,
    requestId: init.requestId,
    attributes: init.attributes,
  };
}

/**
 * The audit publisher of a service that publishes the event of a change once the change is
 * stored (auth, tenant-registry, policy). A stored change cannot be taken back when its event is
 * not stored, so a failed publish never passes silently: it is logged at error level with the
 * event (attributes never hold secrets), so an operator can restore the record, and it rejects
 * with DEPENDENCY_UNAVAILABLE, so the caller learns that the change was made without its record
 * and a library can withdraw a credential it was about to hand out.
 *
 * `publisher` is normally a background publisher with `confirm: 'stored'`: a publish resolves
 * once JetStream acknowledged the event or the service's spool holds it on disk.
 */
export function createChangeAuditPublisher({
  publisher,
  logger,
}: {
  publisher: Pick<AuditPublisher, 'publish'>;
  logger: Pick<Logger, 'error'>;
}): Pick<AuditPublisher, 'publish'> {
  return {
    async publish(init: AuditEventInit): Promise<string> {
      try {
        return await publisher.publish(init);
      } catch (error) {
        logger.error({ err: error, auditEvent: describeEvent(init) }, 'the audit event of a stored change was not stored');
        throw new AppError('DEPENDENCY_UNAVAILABLE', `the change was made, but the audit trail did not store its record (${init.kind})`, {
          cause: error,
        });
      }
    },
  };
}
