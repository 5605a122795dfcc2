import { httpStatusOf, toAppError, type AuditPublisher, type Logger } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import type { AuthorizedContext } from '../pipeline/index.js';

/** Where the failed request was going: the route's method and path pattern. */
export interface FailedRoute {
  method: string;
  path: string;
}

/**
 * Records a request the pipeline allowed that then failed with an internal or dependency error
 * (any answer of 500 or more) as `request.error` in its tenant's trail: the principal, the
 * assistant, the capability, the request id and the error code — never the error's message or
 * cause, which stay in the log. Refusals after the pipeline (bad input, not found, conflicts) are
 * the caller's doing and are not recorded. Publishing never changes the answer: the event is
 * handed to the background publisher, and one it refuses is logged at error level.
 */
export function createRequestErrorAuditor({ audit, logger }: { audit: Pick<AuditPublisher, 'publish'>; logger: Pick<Logger, 'error'> }) {
  return async function auditRequestError(context: AuthorizedContext, route: FailedRoute, thrown: unknown): Promise<void> {
    const { code } = toAppError(thrown);
    const status = httpStatusOf(code);
    if (status < 500) return;
    const { request, target, principal, capability } = context;
    await audit
      .publish({
        tenantId: target.tenantId,
        kind: 'request.error',
        principal,
        assistantId: target.assistantId,
        object: capability.object,
        action: capability.action,
        outcome: Outcome.FAILURE,
        reason: code,
        requestId: request.requestId,
        attributes: { method: route.method.toUpperCase(), route: route.path, status: String(status) },
      })
      .catch((error: unknown) => {
        logger.error({ err: error, requestId: request.requestId, code }, 'the request.error audit event was not accepted');
      });
  };
}

export type RequestErrorAuditor = ReturnType<typeof createRequestErrorAuditor>;
