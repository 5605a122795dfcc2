import { randomUUID } from 'node:crypto';
import { create, equals } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from '@jest/globals';
import { AuditEventSchema, Outcome, OutcomeSchema } from '@portcullis/proto/audit';
import { PrincipalKind, PrincipalKindSchema, Role } from '@portcullis/proto/common';
import { auditEventOf, enumName, enumValue, recordOf } from './audit-record.js';

describe('audit records', () => {
  it('round-trips a full event through its stored form', () => {
    const event = create(AuditEventSchema, {
      eventId: randomUUID(),
      tenantId: randomUUID(),
      kind: 'tool.call',
      principal: { kind: PrincipalKind.ROBOT, id: 'robot-1', tenantId: randomUUID(), role: Role.USER },
      assistantId: randomUUID(),
      object: 'tools',
      action: 'invoke',
      outcome: Outcome.SUCCESS,
      reason: 'ok',
      traceId: '0af7651916cd43dd8448eb211c80319c',
      requestId: 'req-9',
      occurredAt: timestampFromDate(new Date('2026-05-06T07:08:09.123Z')),
      attributes: { tool: 'search', inputHash: 'abc' },
    });
    expect(equals(AuditEventSchema, auditEventOf(recordOf(event)), event)).toBe(true);
  });

  it('stores empty strings and unspecified enums as null and reads them back as defaults', () => {
    const event = create(AuditEventSchema, { eventId: randomUUID(), tenantId: randomUUID(), kind: 'login' });
    const record = recordOf(event);
    expect(record).toMatchObject({ principalKind: null, principalId: null, outcome: null, occurredAt: null, reason: null });
    expect(equals(AuditEventSchema, auditEventOf(record), event)).toBe(true);
  });

  it('names enum values without their shared prefix and keeps unknown numbers', () => {
    expect(enumName(PrincipalKindSchema, PrincipalKind.API_KEY)).toBe('api_key');
    expect(enumName(OutcomeSchema, Outcome.ALLOW)).toBe('allow');
    expect(enumName(OutcomeSchema, 0)).toBeNull();
    expect(enumName(OutcomeSchema, 99)).toBe('99');
    expect(enumValue(PrincipalKindSchema, 'api_key')).toBe(PrincipalKind.API_KEY);
    expect(enumValue(OutcomeSchema, '99')).toBe(99);
    expect(enumValue(OutcomeSchema, 'no-such-outcome')).toBe(0);
  });
});
