import { timestampDate } from '@bufbuild/protobuf/wkt';
import { AppError, isUuid } from '@portcullis/kit';
import { Outcome, OutcomeSchema, type EventFilter as EventFilterMessage } from '@portcullis/proto/audit';
import { enumName } from './audit-record.js';

/** A validated filter over a tenant's audit records; every field set must match. */
export interface EventFilter {
  occurredFrom?: Date;
  occurredBefore?: Date;
  principalId?: string;
  /** Exact kind. */
  kind?: string;
  /** Kind family: kinds starting with this text, which ends in ".". */
  kindPrefix?: string;
  assistantId?: string;
  /** Stored outcome name (`allow`, `deny`, `success`, `failure`). */
  outcome?: string;
}

const KIND = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;
const MAX_TEXT = 200;

function invalid(field: string, message: string): AppError {
  return new AppError('INVALID_ARGUMENT', message, { details: { field: `filter.${field}` } });
}

/** Checks a filter from the API and turns it into the form the queries take; unset fields match everything. */
export function parseEventFilter(message: EventFilterMessage | undefined): EventFilter {
  if (!message) return {};
  const filter: EventFilter = {};
  if (message.occurredFrom) filter.occurredFrom = timestampDate(message.occurredFrom);
  if (message.occurredBefore) filter.occurredBefore = timestampDate(message.occurredBefore);
  for (const [field, date] of [
    ['occurred_from', filter.occurredFrom],
    ['occurred_before', filter.occurredBefore],
  ] as const) {
    if (date && Number.isNaN(date.getTime())) throw invalid(field, `${field} is not a valid time`);
  }
  if (filter.occurredFrom && filter.occurredBefore && filter.occurredFrom >= filter.occurredBefore) {
    throw invalid('occurred_before', 'occurred_before must be later than occurred_from');
  }
  if (message.principalId !== '') {
    if (message.principalId.length > MAX_TEXT || message.principalId.includes('\0'))
      throw invalid('principal_id', 'principal_id is malformed');
    filter.principalId = message.principalId;
  }
  if (message.kind !== '') {
    if (message.kind.length > MAX_TEXT || !KIND.test(message.kind)) {
      throw invalid('kind', 'kind must be a dotted kind ("tool.call") or a family ending in "." ("tool.")');
    }
    if (message.kind.endsWith('.')) filter.kindPrefix = message.kind;
    else filter.kind = message.kind;
  }
  if (message.assistantId !== '') {
    if (!isUuid(message.assistantId)) throw invalid('assistant_id', 'assistant_id must be a UUID');
    filter.assistantId = message.assistantId.toLowerCase();
  }
  if (message.outcome !== Outcome.UNSPECIFIED) {
    // Protobuf enums are open: a number this build does not know arrives as is.
    const known = OutcomeSchema.values.some((value) => value.number === (message.outcome as number));
    const outcome = enumName(OutcomeSchema, message.outcome);
    if (!known || outcome === null) throw invalid('outcome', 'outcome is not a known outcome');
    filter.outcome = outcome;
  }
  return filter;
}
