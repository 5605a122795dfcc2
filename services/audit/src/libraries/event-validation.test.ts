import { randomUUID } from 'node:crypto';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from '@jest/globals';
import { AuditEventSchema, Outcome, type AuditEvent } from '@portcullis/proto/audit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import { parseAuditMessage, parseAuditSubject } from './event-validation.js';

const prefix = 'run1';
const tenantA = randomUUID();
const tenantB = randomUUID();

function message(init: Exclude<MessageInitShape<typeof AuditEventSchema>, AuditEvent> = {}, subject?: string) {
  const event = create(AuditEventSchema, { eventId: randomUUID(), tenantId: tenantA, kind: 'authz.decision', ...init });
  return { subject: subject ?? `${prefix}.audit.${event.tenantId}.${event.kind}`, data: toBinary(AuditEventSchema, event) };
}

describe('parseAuditSubject', () => {
  it('splits the tenant from a dotted kind', () => {
    expect(parseAuditSubject(`${prefix}.audit.${tenantA}.tool.call`, prefix)).toEqual({ tenantId: tenantA, kind: 'tool.call' });
    expect(parseAuditSubject(`audit.${tenantA}.login`, '')).toEqual({ tenantId: tenantA, kind: 'login' });
  });

  it.each([
    `other.audit.${tenantA}.login`,
    `${prefix}.audit.${tenantA}`,
    `${prefix}.audit.${tenantA}.`,
    `${prefix}.audit..login`,
    `${prefix}.audits.${tenantA}.login`,
  ])('refuses %s', (subject) => {
    expect(parseAuditSubject(subject, prefix)).toBeUndefined();
  });
});

describe('parseAuditMessage', () => {
  it('accepts a well-formed event and maps every field', () => {
    const occurred = new Date('2026-01-02T03:04:05.678Z');
    const parsed = parseAuditMessage(
      message({
        principal: { kind: PrincipalKind.API_KEY, id: 'key-1', tenantId: tenantA, role: Role.ADMIN },
        assistantId: 'assistant-1',
        object: 'tools',
        action: 'invoke',
        outcome: Outcome.DENY,
        reason: 'no capability',
        traceId: 'abc',
        requestId: 'req-1',
        occurredAt: timestampFromDate(occurred),
        attributes: { tool: 'search' },
      }),
      prefix,
    );
    expect(parsed).toEqual({
      ok: true,
      record: expect.objectContaining({
        tenantId: tenantA,
        kind: 'authz.decision',
        principalKind: 'api_key',
        principalId: 'key-1',
        principalRole: 'admin',
        principalTenantId: tenantA,
        outcome: 'deny',
        reason: 'no capability',
        occurredAt: occurred,
        attributes: { tool: 'search' },
      }),
    });
  });

  it('compares the subject tenant case-insensitively but stores it lower-case', () => {
    const upper = tenantA.toUpperCase();
    const parsed = parseAuditMessage(message({ tenantId: upper }, `${prefix}.audit.${tenantA}.authz.decision`), prefix);
    expect(parsed).toMatchObject({ ok: true, record: { tenantId: tenantA } });
  });

  it.each([
    ['undecodable', { subject: `${prefix}.audit.${tenantA}.x`, data: new Uint8Array([0xff, 0xff, 0xff]) }],
    ['invalid_event_id', message({ eventId: 'not-a-uuid' })],
    ['invalid_event_id', message({ eventId: '' })],
    ['invalid_tenant_id', message({ tenantId: 'tenant-a' }, `${prefix}.audit.tenant-a.authz.decision`)],
    ['missing_kind', message({ kind: '' }, `${prefix}.audit.${tenantA}.x`)],
    ['missing_kind', message({ kind: '   ' }, `${prefix}.audit.${tenantA}.x`)],
    ['bad_subject', message({}, `elsewhere.audit.${tenantA}.authz.decision`)],
    ['tenant_mismatch', message({ tenantId: tenantA }, `${prefix}.audit.${tenantB}.authz.decision`)],
    ['kind_mismatch', message({ kind: 'authz.decision' }, `${prefix}.audit.${tenantA}.tool.call`)],
    ['invalid_occurred_at', message({ occurredAt: { seconds: 10n ** 15n, nanos: 0 } })],
    ['invalid_occurred_at', message({ occurredAt: { seconds: 0n, nanos: -1 } })],
    ['invalid_text', message({ reason: 'nul\u0000byte' })],
    ['invalid_text', message({ attributes: { 'k\u0000': 'v' } })],
  ])('rejects with %s', (reason, input) => {
    expect(parseAuditMessage(input, prefix)).toEqual({ ok: false, reason });
  });
});
