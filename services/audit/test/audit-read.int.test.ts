import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  createGrpcClient,
  createGrpcServer,
  createLogger,
  createTenantScope,
  createTrustedIdentities,
  PLATFORM_AUDITOR,
  type GrpcClient,
  type GrpcServer,
} from '@portcullis/kit';
import { AuditService, EventFilterSchema, Outcome } from '@portcullis/proto/audit';
import { createTestDatabase, withPg, type TestDatabase } from '@portcullis/test';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createAuditService } from '../src/grpc/audit-service.js';
import type { AuditRecord } from '../src/libraries/audit-record.js';
import { createCheckpointer, createCheckpointKeyring, type CheckpointKeyring } from '../src/libraries/checkpoints.js';
import { createEventLog } from '../src/libraries/event-log.js';
import { chainHashOf, createChainVerifier } from '../src/libraries/hash-chain.js';
import { checkpointTables, createAuditReadQueries } from '../src/queries/audit-read.js';
import { appendOnlyTables, createAuditEventQueries, undeletableTables } from '../src/queries/audit-events.js';

const identities = createTrustedIdentities();
const migrationsDir = new URL('../prisma/migrations', import.meta.url).pathname;
const logger = createLogger({ name: 'audit-read-test', level: 'silent' });

const record = (tenantId: string, n: number, over: Partial<AuditRecord> = {}): AuditRecord => ({
  eventId: randomUUID(),
  tenantId,
  kind: n % 3 === 0 ? 'tool.call' : 'authz.decision',
  principalKind: 'user',
  principalId: n % 2 === 0 ? 'alice' : 'bob',
  principalRole: 'owner',
  principalTenantId: tenantId,
  assistantId: null,
  object: 'tools',
  action: 'invoke',
  outcome: n % 2 === 0 ? 'allow' : 'deny',
  reason: `reason ${String(n)}`,
  traceId: null,
  requestId: `r${String(n)}`,
  occurredAt: new Date(Date.UTC(2026, 11, 3, 12, 0, n)),
  attributes: { n: String(n) },
  ...over,
});

describe('audit trail reads, export and signed checkpoints (Postgres)', () => {
  let db: TestDatabase;
  let prisma: PrismaClient;
  let server: GrpcServer;
  let keyring: CheckpointKeyring;
  let events: ReturnType<typeof createAuditEventQueries>;
  let reads: ReturnType<typeof createAuditReadQueries>;
  let checkpointRound: () => Promise<number>;
  let address: string;
  const clients: GrpcClient<typeof AuditService>[] = [];
  const clientAs = (name: keyof typeof identities) => {
    const client = createGrpcClient(AuditService, { address, deadlineMs: 5_000, credential: identities[name].credentialFor('audit') });
    clients.push(client);
    return client;
  };
  const tamper = (sql: string, params: unknown[]) => withPg(db.ownerUrl, (c) => c.query(sql, params));

  beforeAll(async () => {
    db = await createTestDatabase('audit_read', migrationsDir, {
      appendOnlyTables: [...appendOnlyTables, ...checkpointTables],
      undeletableTables,
    });
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    events = createAuditEventQueries(createTenantScope(prisma));
    reads = createAuditReadQueries(createTenantScope(prisma), prisma);
    keyring = await createCheckpointKeyring({ signingKey: generateKeyPairSync('ed25519').privateKey });
    checkpointRound = createCheckpointer({ ...reads, chainHead: events.chainHead, keyring, logger });
    server = createGrpcServer({
      identity: identities['audit'],
      logger,
      services: [
        createAuditService({
          log: createEventLog({ ...reads, checkpointKeys: () => keyring.publicKeys() }),
          verifyChain: createChainVerifier(events, { listCheckpoints: reads.listCheckpoints, verify: keyring.verify }, { pageSize: 3 }),
        }),
      ],
    });
    address = `127.0.0.1:${String(await server.listen('127.0.0.1', 0))}`;
    server.setServing(true);
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await server.drain(1_000);
    await prisma.$disconnect();
    await db.drop();
  });

  describe('filtered listing', () => {
    const tenantId = randomUUID();
    const assistantId = randomUUID();
    beforeAll(async () => {
      await events.insertMany(
        tenantId,
        Array.from({ length: 12 }, (_, i) => record(tenantId, i + 1, i === 4 ? { assistantId } : {})),
      );
      // Another tenant's events never show, whatever the filter.
      const other = randomUUID();
      await events.insertMany(other, [record(other, 2), record(other, 3)]);
    });

    const list = async (filter: MessageInitShape<typeof EventFilterSchema>, pageSize = 5) => {
      const client = clientAs('api-gateway');
      const seen: string[] = [];
      let pageToken = '';
      for (let page = 0; page < 20; page += 1) {
        const response = await client.listEvents({ tenantId, pageSize, pageToken, filter: create(EventFilterSchema, filter) });
        seen.push(...response.events.map((e) => e.requestId));
        if (!response.nextPageToken) return seen;
        pageToken = response.nextPageToken;
      }
      throw new Error('pagination did not end');
    };

    it('narrows by kind, kind family, principal, outcome, assistant and time, newest first across pages', async () => {
      await expect(list({})).resolves.toEqual(Array.from({ length: 12 }, (_, i) => `r${String(12 - i)}`));
      await expect(list({ kind: 'tool.call' })).resolves.toEqual(['r12', 'r9', 'r6', 'r3']);
      await expect(list({ kind: 'tool.' })).resolves.toEqual(['r12', 'r9', 'r6', 'r3']);
      await expect(list({ kind: 'tool' })).resolves.toEqual([]);
      await expect(list({ principalId: 'alice', outcome: Outcome.ALLOW }, 2)).resolves.toEqual(['r12', 'r10', 'r8', 'r6', 'r4', 'r2']);
      await expect(list({ outcome: Outcome.DENY, kind: 'authz.decision' })).resolves.toEqual(['r11', 'r7', 'r5', 'r1']);
      await expect(list({ assistantId })).resolves.toEqual(['r5']);
      await expect(
        list({
          occurredFrom: timestampFromDate(new Date(Date.UTC(2026, 11, 3, 12, 0, 3))),
          occurredBefore: timestampFromDate(new Date(Date.UTC(2026, 11, 3, 12, 0, 6))),
        }),
      ).resolves.toEqual(['r5', 'r4', 'r3']);
    });

    it('refuses a malformed filter with INVALID_ARGUMENT naming the field', async () => {
      const client = clientAs('api-gateway');
      const from = timestampFromDate(new Date(Date.UTC(2026, 11, 3)));
      for (const [filter, field] of [
        [{ occurredFrom: from, occurredBefore: from }, 'occurred_before'],
        [{ assistantId: 'not-a-uuid' }, 'assistant_id'],
        [{ kind: 'DROP TABLE;' }, 'kind'],
      ] as const) {
        await expect(client.listEvents({ tenantId, pageSize: 5, filter: create(EventFilterSchema, filter) })).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
          message: expect.stringContaining(field),
        });
      }
      // An outcome this build does not know (protobuf enums are open).
      const unknownOutcome = create(EventFilterSchema);
      Reflect.set(unknownOutcome, 'outcome', 99);
      await expect(client.listEvents({ tenantId, pageSize: 5, filter: unknownOutcome })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('outcome'),
      });
    });

    it('lets only the gateway, the platform auditor and operators read the trail', async () => {
      await expect(clientAs(PLATFORM_AUDITOR).listEvents({ tenantId, pageSize: 1 })).resolves.toMatchObject({
        events: [{ requestId: 'r12' }],
      });
      await expect(clientAs('platform-ops').verifyChain({ tenantId })).resolves.toMatchObject({ intact: true });
      for (const name of ['policy', 'tool-gateway', 'auth', 'device-enrollment'] as const) {
        await expect(clientAs(name).listEvents({ tenantId, pageSize: 1 })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
        await expect(clientAs(name).exportEvents({ tenantId })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      }
    });
  });

  describe('signed checkpoints', () => {
    it('checkpoints every grown chain once, and again only after it grows', async () => {
      const a = randomUUID();
      const b = randomUUID();
      await events.insertMany(a, [record(a, 1), record(a, 2)]);
      await events.insertMany(b, [record(b, 1)]);
      await checkpointRound();
      await expect(checkpointRound()).resolves.toBe(0);
      await events.insertMany(a, [record(a, 3)]);
      await expect(checkpointRound()).resolves.toBe(1);
      const stored = await reads.listCheckpoints(a, { fromSeq: 1n, limit: 10 });
      expect(stored.map((c) => c.chainSeq)).toEqual([2n, 3n]);
      for (const checkpoint of stored) await expect(keyring.verify(checkpoint)).resolves.toBe(true);
      await expect(reads.listCheckpoints(b, { fromSeq: 1n, limit: 10 })).resolves.toHaveLength(1);
    });

    it('sees no head of another tenant outside the checkpoint scan', async () => {
      const tenantId = randomUUID();
      await events.insertMany(tenantId, [record(tenantId, 1)]);
      const visible = await withPg(
        db.appUrl,
        async (c) => (await c.query<{ tenant_id: string }>('SELECT tenant_id FROM audit_chain_heads')).rows,
      );
      expect(visible).toEqual([]);
      const scanned = await withPg(db.appUrl, async (c) => {
        await c.query('BEGIN');
        await c.query("SELECT set_config('app.audit_scan', 'grown_chains', true)");
        const rows = (await c.query<{ tenant_id: string }>('SELECT tenant_id FROM audit_chain_heads')).rows;
        await c.query('ROLLBACK');
        return rows.map((row) => row.tenant_id);
      });
      expect(scanned).toContain(tenantId);
      // Checkpoints are append-only for the application role.
      await checkpointRound();
      const inTenant = (sql: string) =>
        withPg(db.appUrl, async (c) => {
          await c.query('BEGIN');
          try {
            await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantId]);
            return await c.query(sql);
          } finally {
            await c.query('ROLLBACK');
          }
        });
      await expect(inTenant('DELETE FROM audit_checkpoints')).rejects.toThrow(/permission denied/);
      await expect(inTenant("UPDATE audit_checkpoints SET jws = 'x'")).rejects.toThrow(/permission denied/);
    });

    it('finds a rewrite with every hash recomputed, which the chain alone cannot show', async () => {
      const tenantId = randomUUID();
      const records = Array.from({ length: 6 }, (_, i) => record(tenantId, i + 1));
      await events.insertMany(tenantId, records.slice(0, 4));
      await checkpointRound();
      await events.insertMany(tenantId, records.slice(4));
      const client = clientAs('platform-ops');
      await expect(client.verifyChain({ tenantId })).resolves.toMatchObject({ intact: true, recordsChecked: 6n });

      // Someone with the database owner's rights changes record 2 and recomputes every hash after it and the head.
      const rows = await withPg(
        db.ownerUrl,
        async (c) =>
          (
            await c.query<{ chain_seq: string; event_id: string }>(
              'SELECT chain_seq, event_id FROM audit_events WHERE tenant_id = $1 ORDER BY chain_seq',
              [tenantId],
            )
          ).rows,
      );
      let prev = (await reads.listChainPage(tenantId, { afterSeq: 0n, limit: 1 }))[0]?.recordHash ?? Buffer.alloc(32);
      for (const [index, row] of rows.entries()) {
        if (index === 0) continue;
        const changed = { ...(records[index] as AuditRecord), ...(index === 1 ? { outcome: 'allow', reason: 'rewritten' } : {}) };
        const seq = BigInt(row.chain_seq);
        const hash = chainHashOf(prev, seq, changed);
        await tamper('UPDATE audit_events SET outcome = $1, reason = $2, prev_hash = $3, record_hash = $4 WHERE event_id = $5', [
          changed.outcome,
          changed.reason,
          prev,
          hash,
          row.event_id,
        ]);
        prev = hash;
      }
      await tamper('UPDATE audit_chain_heads SET last_hash = $1 WHERE tenant_id = $2', [prev, tenantId]);

      await expect(client.verifyChain({ tenantId })).resolves.toMatchObject({
        intact: false,
        firstBroken: { chainSeq: 4n, eventId: (records[3] as AuditRecord).eventId, reason: 'checkpoint_mismatch' },
      });
    });

    it('finds a chain cut back below its checkpoint, and a checkpoint whose signature was replaced', async () => {
      const cut = randomUUID();
      const records = Array.from({ length: 4 }, (_, i) => record(cut, i + 1));
      await events.insertMany(cut, records);
      await checkpointRound();
      const third = (await reads.listChainPage(cut, { afterSeq: 2n, limit: 1 }))[0];
      await tamper('DELETE FROM audit_events WHERE tenant_id = $1 AND chain_seq = 4', [cut]);
      await tamper('UPDATE audit_chain_heads SET last_seq = 3, last_hash = $1 WHERE tenant_id = $2', [third?.recordHash, cut]);
      await expect(clientAs('platform-ops').verifyChain({ tenantId: cut })).resolves.toMatchObject({
        intact: false,
        firstBroken: { chainSeq: 4n, reason: 'checkpoint_mismatch' },
      });

      const forged = randomUUID();
      await events.insertMany(forged, [record(forged, 1), record(forged, 2)]);
      await checkpointRound();
      const stranger = await createCheckpointKeyring({ signingKey: generateKeyPairSync('ed25519').privateKey });
      const [checkpoint] = await reads.listCheckpoints(forged, { fromSeq: 1n, limit: 1 });
      const resigned = await stranger.sign({ ...(checkpoint as NonNullable<typeof checkpoint>) });
      await tamper('UPDATE audit_checkpoints SET jws = $1 WHERE tenant_id = $2', [resigned.jws, forged]);
      await expect(clientAs('platform-ops').verifyChain({ tenantId: forged })).resolves.toMatchObject({
        intact: false,
        firstBroken: { chainSeq: 2n, reason: 'checkpoint_unverifiable' },
      });
    });
  });

  describe('export', () => {
    it('pages the chain in order with each link, the checkpoints over each page and the keys, enough to verify a copy', async () => {
      const tenantId = randomUUID();
      await events.insertMany(
        tenantId,
        Array.from({ length: 5 }, (_, i) => record(tenantId, i + 1)),
      );
      await checkpointRound();
      await events.insertMany(tenantId, [record(tenantId, 6), record(tenantId, 7)]);
      await checkpointRound();
      const client = clientAs(PLATFORM_AUDITOR);
      const links: { seq: bigint; prev: Buffer; hash: Buffer; requestId: string }[] = [];
      const checkpoints = new Map<bigint, string>();
      let pageToken = '';
      for (let page = 0; page < 10; page += 1) {
        const response = await client.exportEvents({ tenantId, pageSize: 3, pageToken });
        expect(response.checkpointKeys.map((k) => (JSON.parse(k) as { kid: string }).kid)).toEqual([keyring.keyId]);
        for (const item of response.events) {
          links.push({
            seq: item.link?.chainSeq ?? 0n,
            prev: Buffer.from(item.link?.prevHash ?? []),
            hash: Buffer.from(item.link?.recordHash ?? []),
            requestId: item.event?.requestId ?? '',
          });
        }
        for (const checkpoint of response.checkpoints) checkpoints.set(checkpoint.chainSeq, checkpoint.jws);
        if (!response.nextPageToken) break;
        pageToken = response.nextPageToken;
      }
      expect(links.map((l) => l.seq)).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n]);
      expect(links.map((l) => l.requestId)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);
      for (const [index, link] of links.entries()) if (index > 0) expect(link.prev).toEqual(links[index - 1]?.hash);
      expect([...checkpoints.keys()]).toEqual([5n, 7n]);
      const fifth = links[4] as (typeof links)[number];
      await expect(
        keyring.verify({
          tenantId,
          chainSeq: 5n,
          recordHash: fifth.hash,
          signedAt: (await reads.listCheckpoints(tenantId, { fromSeq: 5n, limit: 1 }))[0]?.signedAt ?? new Date(0),
          jws: checkpoints.get(5n) ?? '',
        }),
      ).resolves.toBe(true);
    });
  });
});
