import { describe, expect, it } from '@jest/globals';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import type { AuditEventInit } from './audit/audit-publisher.js';
import { createChangeAuditPublisher } from './change-audit.js';
import { AppError } from './errors.js';
import { createLogger } from './logger.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const event: AuditEventInit = {
  tenantId,
  kind: 'apikey.revoked',
  principal: { kind: PrincipalKind.USER, id: '00000000-0000-4000-8000-0000000000f1', tenantId },
  object: 'apikeys',
  action: 'revoke',
  outcome: Outcome.SUCCESS,
  attributes: { key_id: 'abcdefghij012345' },
};

function setup(publish: (init: AuditEventInit) => Promise<string>) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    name: 'change-audit-test',
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { lines, audit: createChangeAuditPublisher({ publisher: { publish }, logger }) };
}

describe('createChangeAuditPublisher', () => {
  it('passes a stored event through, logging nothing', async () => {
    const published: AuditEventInit[] = [];
    const { audit, lines } = setup((init) => {
      published.push(init);
      return Promise.resolve('event-1');
    });
    await expect(audit.publish(event)).resolves.toBe('event-1');
    expect(published).toEqual([event]);
    expect(lines).toEqual([]);
  });

  it('logs an event that was not stored at error level, with what restores it, and rejects with DEPENDENCY_UNAVAILABLE', async () => {
    const { audit, lines } = setup(() => Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', 'the audit trail is unavailable')));
    const rejection = await audit.publish(event).catch((error: unknown) => error);
    expect(rejection).toBeInstanceOf(AppError);
    expect(rejection).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', message: expect.stringContaining('apikey.revoked') });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 50,
      auditEvent: {
        tenantId,
        kind: 'apikey.revoked',
        principal: { kind: PrincipalKind.USER, id: '00000000-0000-4000-8000-0000000000f1' },
        object: 'apikeys',
        action: 'revoke',
        attributes: { key_id: 'abcdefghij012345' },
      },
    });
  });

  it('turns any failure, not only an AppError, into DEPENDENCY_UNAVAILABLE', async () => {
    const { audit } = setup(() => Promise.reject(new Error('socket closed')));
    await expect(audit.publish(event)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });
});
