import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createGrpcClient } from '@portcullis/kit';
import { AuditService } from '@portcullis/proto/audit';
import { demo, httpJson, signIn } from '../../deploy/local/seed.mjs';
import { verifyAuditExport } from '../../deploy/examples/verify-audit-export.mjs';
import { infra, pollUntil, testRunId, withPg } from '../src/infra.js';
import { startTestPlatform, type ListedAuditEvent, type TestPlatform } from '../src/platform.js';

interface ExportLine {
  type: string;
  seq?: string;
  record?: { eventId: string; requestId: string | null };
}

describe('the audit trail through the gateway: filtered reads, a verifiable export, tamper evidence', () => {
  let platform: TestPlatform;
  let tokens: { owner: string; admin: string; user: string; beta: string };
  const get = (path: string, token: string, host: string = demo.host) => httpJson(platform.gatewayUrl, 'GET', path, { token, host });
  const exportText = async (token: string) => {
    const response = await get('/api/audit/export', token);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/jsonl/);
    return response.body as string;
  };
  const linesOf = (text: string) =>
    text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ExportLine);

  beforeAll(async () => {
    platform = await startTestPlatform();
    const { gatewayUrl, passwords, seeded } = platform;
    tokens = {
      owner: await signIn(gatewayUrl, demo.accounts.owner, passwords.owner, seeded.tenantId),
      admin: await signIn(gatewayUrl, demo.accounts.admin, passwords.admin, seeded.tenantId),
      user: await signIn(gatewayUrl, demo.accounts.user, passwords.user, seeded.tenantId),
      beta: await signIn(gatewayUrl, demo.accounts.betaOwner, passwords.betaOwner, seeded.beta.tenantId),
    };
  }, 180_000);

  afterAll(async () => {
    // beforeAll may have failed before the platform existed.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await platform?.stop();
  }, 60_000);

  it('lets owners and admins read the trail narrowed by kind and outcome, and nobody else', async () => {
    const refused = await get('/api/audit/events', tokens.user);
    expect(refused.status).toBe(403);
    const refusalId = refused.headers['x-request-id'] as string;

    const denials = await pollUntil(
      async () => {
        const response = await get('/api/audit/events?kind=authz.decision&outcome=deny&pageSize=200', tokens.admin);
        expect(response.status).toBe(200);
        const events = (response.body as { events: ListedAuditEvent[] }).events;
        return events.some((event) => event.requestId === refusalId) ? events : undefined;
      },
      { timeoutMs: 20_000, what: "the user's refused read to be audited" },
    );
    expect(denials.every((event) => event.kind === 'authz.decision' && event.outcome === 'deny')).toBe(true);

    const family = await get('/api/audit/events?kind=authz.&pageSize=5', tokens.owner);
    expect((family.body as { events: ListedAuditEvent[] }).events.every((event) => event.kind.startsWith('authz.'))).toBe(true);
    const malformed = await get('/api/audit/events?outcome=sometimes', tokens.owner);
    expect(malformed.status).toBe(400);

    // Another tenant's owner reaches this tenant's trail neither by its host nor by an export.
    expect((await get('/api/audit/events', tokens.beta)).status).toBe(403);
    expect((await get('/api/audit/export', tokens.beta)).status).toBe(403);
    expect((await get('/api/audit/export', tokens.user)).status).toBe(403);
  });

  it('exports JSON Lines that check out offline: every record hash and link, and the signed checkpoints', async () => {
    const text = await pollUntil(
      async () => {
        const candidate = await exportText(tokens.owner);
        return linesOf(candidate).some((line) => line.type === 'checkpoint') ? candidate : undefined;
      },
      { timeoutMs: 20_000, what: 'a signed checkpoint of the chain' },
    );
    const lines = linesOf(text);
    expect(lines[0]?.type).toBe('export');
    expect(lines.at(-1)?.type).toBe('end');
    const verdict = verifyAuditExport(text);
    expect(verdict).toMatchObject({ ok: true, problem: null });
    expect(verdict.records).toBeGreaterThan(3);
    expect(verdict.checkpoints).toBeGreaterThan(0);

    // A copy edited after export no longer checks out, whether the named field or the hashed text is edited.
    const edited = text.replace(/"outcome":"deny"/, '"outcome":"allow"');
    expect(edited).not.toBe(text);
    expect(verifyAuditExport(edited).problem?.why).toBe('record fields differ from its canonical text');
    const rehashed = text.replace(/"outcome":"deny"(.*?)\\"deny\\"/, '"outcome":"allow"$1\\"allow\\"');
    expect(rehashed).not.toBe(text);
    expect(verifyAuditExport(rehashed).problem?.why).toBe('record hash does not hold');
  });

  it('reads any tenant for the platform auditor over gRPC, and the chain verifies as intact', async () => {
    const auditor = createGrpcClient(AuditService, {
      address: `127.0.0.1:${String(platform.ports.audit.grpc)}`,
      deadlineMs: 5_000,
      credential: platform.identityOf('platform-auditor').credentialFor('audit'),
    });
    try {
      const beta = await auditor.listEvents({ tenantId: platform.seeded.beta.tenantId, pageSize: 5 });
      expect(beta.events.length).toBeGreaterThan(0);
      expect(beta.events.every((event) => event.tenantId === platform.seeded.beta.tenantId)).toBe(true);
    } finally {
      auditor.close();
    }
    const verified = await get('/api/audit/verify', tokens.owner);
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ intact: true, firstBroken: null });
  });

  it('names the record changed directly in the database, through the gateway and in a new export', async () => {
    const text = await exportText(tokens.owner);
    const victim = linesOf(text).find((line) => line.type === 'event' && line.seq === '2');
    const eventId = victim?.record?.eventId;
    expect(eventId).toBeDefined();
    const auditDb = new URL(infra.postgresAdminUrl);
    auditDb.pathname = `/pc_${testRunId}_audit`;
    await withPg(auditDb.toString(), (c) =>
      c.query("UPDATE audit_events SET reason = 'nothing to see' WHERE tenant_id = $1 AND event_id = $2", [
        platform.seeded.tenantId,
        eventId,
      ]),
    );
    const verified = await get('/api/audit/verify', tokens.owner);
    expect(verified.body).toMatchObject({ intact: false, firstBroken: { seq: '2', eventId, reason: 'record_altered' } });
    const tampered = verifyAuditExport(await exportText(tokens.owner));
    expect(tampered.ok).toBe(false);
    expect(tampered.problem?.why).toBe('record hash does not hold');
  });
});
