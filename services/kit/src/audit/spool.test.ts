import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { create } from '@bufbuild/protobuf';
import { AuditEventSchema, type AuditEvent } from '@portcullis/proto/audit';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import {
  auditSpoolConfigSchema,
  auditSpoolDirOf,
  checkAuditSpoolConfig,
  decodeSpoolFile,
  encodeSpoolFile,
  openAuditSpool,
  type SpooledBatch,
} from './spool.js';

const logger = createLogger({ name: 'spool-test', level: 'silent' });
const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
let counter = 0;

const event = (tenantId = tenantA, kind = 'authz.decision'): AuditEvent => {
  counter += 1;
  return create(AuditEventSchema, { eventId: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`, tenantId, kind });
};
const batch = (batchId: string, size = 1, tenantId = tenantA): SpooledBatch => ({
  tenantId,
  batchId,
  events: Array.from({ length: size }, () => event(tenantId)),
});
const idsOf = (b: SpooledBatch | undefined) => b?.events.map((e) => e.eventId);

describe('audit spool', () => {
  let root: string;
  let dir: string;
  const open = (bounds: { maxBytes?: number; maxEvents?: number } = {}) =>
    openAuditSpool({ dir, maxBytes: bounds.maxBytes ?? 1_000_000, maxEvents: bounds.maxEvents ?? 1_000, logger });

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'portcullis-spool-test-'));
    dir = join(root, 'spool', 'api-gateway');
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps a batch on disk (dir 0700, file 0600) until it is removed', async () => {
    const spool = await open();
    const written = batch('b1', 3);
    await expect(spool.append(written)).resolves.toBe(true);
    expect(((await stat(dir)).mode & 0o777).toString(8)).toBe('700');
    const [file] = await readdir(dir);
    expect(file).toMatch(/^0{15}1-b1\.batch$/);
    expect(((await stat(join(dir, file ?? ''))).mode & 0o777).toString(8)).toBe('600');
    expect(spool.stats()).toMatchObject({ batches: 1, events: 3 });

    const oldest = await spool.oldest();
    expect(oldest).toMatchObject({ tenantId: tenantA, batchId: 'b1', file });
    expect(idsOf(oldest)).toEqual(idsOf(written));
    await spool.remove(oldest?.file ?? '');
    expect(await readdir(dir)).toEqual([]);
    expect(spool.stats()).toMatchObject({ batches: 0, events: 0, bytes: 0 });
    await expect(spool.oldest()).resolves.toBeUndefined();
  });

  it('replays in the order of the appends, across a restart, and numbers new batches after the old ones', async () => {
    const first = await open();
    const batches = [batch('b1'), batch('b2', 2, tenantB), batch('b3')];
    // Appends started together still land in call order.
    await Promise.all(batches.map((b) => first.append(b)));

    const second = await open();
    expect(second.stats()).toMatchObject({ batches: 3, events: 4 });
    await second.append(batch('b4'));
    const seen: string[] = [];
    for (let next = await second.oldest(); next; next = await second.oldest()) {
      seen.push(next.batchId);
      await second.remove(next.file);
    }
    expect(seen).toEqual(['b1', 'b2', 'b3', 'b4']);
  });

  it('refuses, writing nothing, a batch beyond its bound of events or bytes, and takes it once there is room', async () => {
    const byEvents = await open({ maxEvents: 3 });
    await expect(byEvents.append(batch('b1', 2))).resolves.toBe(true);
    await expect(byEvents.append(batch('b2', 2))).resolves.toBe(false);
    expect(await readdir(dir)).toHaveLength(1);
    expect(byEvents.stats()).toMatchObject({ batches: 1, events: 2 });
    const oldest = await byEvents.oldest();
    await byEvents.remove(oldest?.file ?? '');
    await expect(byEvents.append(batch('b2', 2))).resolves.toBe(true);

    await rm(dir, { recursive: true });
    const oneFile = encodeSpoolFile(batch('sized', 2)).length;
    const byBytes = await open({ maxBytes: oneFile + 10 });
    await expect(byBytes.append(batch('b3', 2))).resolves.toBe(true);
    await expect(byBytes.append(batch('b4', 1))).resolves.toBe(false);
    expect(await readdir(dir)).toHaveLength(1);
  });

  it('never replays a half-written or damaged file: a cut .tmp is deleted, a damaged .batch set aside', async () => {
    const spool = await open();
    await spool.append(batch('good1'));
    await spool.append(batch('damaged'));
    await spool.append(batch('good2'));
    const files = (await readdir(dir)).sort();
    // A flipped payload byte in an acknowledged file.
    const damagedPath = join(dir, files[1] ?? '');
    const damaged = await readFile(damagedPath);
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] ?? 0) ^ 0xff;
    await writeFile(damagedPath, damaged);
    // A crash during an append: the temporary file holds only part of the batch.
    const cut = encodeSpoolFile(batch('cut', 4));
    await writeFile(join(dir, '0000000000000009-cut.tmp'), cut.subarray(0, cut.length - 7), { mode: 0o600 });
    // A crash after the fsync but before the rename: the whole batch is there.
    await writeFile(join(dir, '0000000000000010-whole.tmp'), encodeSpoolFile(batch('whole', 2)), { mode: 0o600 });

    const reopened = await open();
    const seen: string[] = [];
    for (let next = await reopened.oldest(); next; next = await reopened.oldest()) {
      seen.push(next.batchId);
      await reopened.remove(next.file);
    }
    expect(seen).toEqual(['good1', 'good2', 'whole']);
    expect(reopened.stats().corrupt).toBe(1);
    expect((await readdir(dir)).sort()).toEqual([`${files[1] ?? ''}.corrupt`]);
  });

  it('sets aside a file damaged after start-up when it comes up for replay', async () => {
    const spool = await open();
    await spool.append(batch('b1'));
    await spool.append(batch('b2'));
    const [first] = (await readdir(dir)).sort();
    await writeFile(join(dir, first ?? ''), 'not a spool file');
    await expect(spool.oldest()).resolves.toMatchObject({ batchId: 'b2' });
    expect(spool.stats()).toMatchObject({ batches: 1, corrupt: 1 });
  });

  it('decodes only what it encoded: header, length, checksum and tenant are all checked', () => {
    const good = encodeSpoolFile(batch('b1', 2));
    expect(decodeSpoolFile(good)).toMatchObject({ batch: { batchId: 'b1', tenantId: tenantA } });
    expect(decodeSpoolFile(good.subarray(0, 20))).toHaveProperty('problem');
    expect(decodeSpoolFile(Buffer.concat([good, Buffer.from([0])]))).toHaveProperty('problem');
    const text = good.toString('latin1');
    const otherTenant = Buffer.from(text.replace(tenantA, tenantB), 'latin1');
    expect(decodeSpoolFile(otherTenant)).toEqual({ problem: "events of another tenant than the header's" });
    expect(decodeSpoolFile(Buffer.from('{"format":"something else"}\n'))).toEqual({ problem: 'unreadable header' });
  });

  it('makes an existing directory private, and refuses a path that is not a directory', async () => {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    await open();
    expect(((await stat(dir)).mode & 0o777).toString(8)).toBe('700');

    const elsewhere = join(root, 'elsewhere');
    await mkdir(elsewhere);
    const link = join(root, 'link');
    await symlink(elsewhere, link);
    await expect(openAuditSpool({ dir: link, maxBytes: 1_000, maxEvents: 10, logger })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    const file = join(root, 'file');
    await writeFile(file, '');
    await expect(openAuditSpool({ dir: file, maxBytes: 1_000, maxEvents: 10, logger })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });

  it('refuses batch ids that are not file-name safe, and empty batches', async () => {
    const spool = await open();
    await expect(spool.append(batch('../escape'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(spool.append({ tenantId: tenantA, batchId: 'empty', events: [] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // A refused append does not block the next one.
    await expect(spool.append(batch('fine'))).resolves.toBe(true);
  });
});

describe('audit spool configuration', () => {
  const schema = auditSpoolConfigSchema.superRefine(checkAuditSpoolConfig);

  it('defaults the directory under the OS temp dir outside production, and requires it in production', () => {
    const development = loadConfig(schema, {});
    expect(development).toMatchObject({ AUDIT_SPOOL_MAX_BYTES: 256 * 1024 * 1024, AUDIT_SPOOL_MAX_EVENTS: 1_000_000 });
    expect(auditSpoolDirOf(development, 'tool-gateway')).toBe(join(tmpdir(), 'portcullis-audit-spool-tool-gateway'));
    expect(() => loadConfig(schema, { NODE_ENV: 'production' })).toThrow(/AUDIT_SPOOL_DIR/);
    const production = loadConfig(schema, {
      NODE_ENV: 'production',
      AUDIT_SPOOL_DIR: '/var/lib/portcullis/spool',
      AUDIT_SPOOL_MAX_BYTES: '65536',
    });
    expect(auditSpoolDirOf(production, 'tool-gateway')).toBe('/var/lib/portcullis/spool');
    expect(production.AUDIT_SPOOL_MAX_BYTES).toBe(65_536);
  });
});
