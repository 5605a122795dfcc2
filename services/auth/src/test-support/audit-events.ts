import { AppError, type AuditEventInit, type AuditPublisher } from '@portcullis/kit';

/**
 * An audit publisher that keeps what it is given; with `failing` set it refuses every event the
 * way the service's change publisher does when the trail did not store it.
 */
export function recordingAudit() {
  const events: AuditEventInit[] = [];
  const state = { failing: false };
  const audit: Pick<AuditPublisher, 'publish'> = {
    publish(init) {
      if (state.failing) return Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', `audit trail down (${init.kind})`));
      events.push(init);
      return Promise.resolve(`event-${String(events.length)}`);
    },
  };
  return {
    audit,
    events,
    /** Every later publish fails (true) or succeeds again (false). */
    fail(failing = true) {
      state.failing = failing;
    },
    /** The recorded events of one kind. */
    ofKind: (kind: string) => events.filter((event) => event.kind === kind),
  };
}

export type RecordingAudit = ReturnType<typeof recordingAudit>;
