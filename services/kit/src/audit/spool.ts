import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AuditEventBatchSchema, type AuditEvent } from '@portcullis/proto/audit';
import { z } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';

/** One tenant's batch of audit events under the message id it is (re)published with. */
export interface SpooledBatch {
  tenantId: string;
  batchId: string;
  events: AuditEvent[];
}

export interface AuditSpoolOptions {
  /** A directory of this process alone (created with mode 0700; files are 0600). */
  dir: string;
  /** Bytes of spool files, at most; an append beyond it is refused. */
  maxBytes: number;
  /** Events in spool files, at most; an append beyond it is refused. */
  maxEvents: number;
  logger: Logger;
}

/** The service settings of a spool; spread into a service's config schema (see `checkAuditSpoolConfig`). */
export const auditSpoolConfigSchema = z.object({
  /** `production` makes AUDIT_SPOOL_DIR required; anything else lets it default under the OS temp dir. */
  NODE_ENV: z.string().optional(),
  /** Where audit batches JetStream did not acknowledge are kept until they are; one directory per process. */
  AUDIT_SPOOL_DIR: z.string().min(1).optional(),
  AUDIT_SPOOL_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(4096)
    .default(256 * 1024 * 1024),
  AUDIT_SPOOL_MAX_EVENTS: z.coerce.number().int().positive().default(1_000_000),
});

/** A config refinement: in production the spool directory must be chosen (a persistent volume), never defaulted. */
export function checkAuditSpoolConfig(
  config: { NODE_ENV?: string | undefined; AUDIT_SPOOL_DIR?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (config.NODE_ENV === 'production' && config.AUDIT_SPOOL_DIR === undefined) {
    ctx.addIssue({ code: 'custom', path: ['AUDIT_SPOOL_DIR'], message: 'required when NODE_ENV is production' });
  }
}

/** The configured spool directory, or (outside production) `<os temp dir>/portcullis-audit-spool-<service>`. */
export function auditSpoolDirOf(config: { AUDIT_SPOOL_DIR?: string | undefined }, service: string): string {
  return config.AUDIT_SPOOL_DIR ?? join(tmpdir(), `portcullis-audit-spool-${service}`);
}

const fileFormat = 'portcullis-audit-spool';
const fileVersion = 1;
/** `<16-digit sequence>-<batch id>.batch`, or `.tmp` while it is written; the sequence orders replay. */
const fileName = /^(\d{16})-([A-Za-z0-9-]{1,64})\.(batch|tmp)$/;
const batchIdPattern = /^[A-Za-z0-9-]{1,64}$/;

const headerSchema = z.object({
  format: z.literal(fileFormat),
  version: z.literal(fileVersion),
  tenantId: z.string().min(1),
  batchId: z.string().regex(batchIdPattern),
  events: z.number().int().positive(),
  payloadBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A spool file: one JSON header line (with the payload's length and SHA-256), then the AuditEventBatch protobuf. */
export function encodeSpoolFile({ tenantId, batchId, events }: SpooledBatch): Buffer {
  const payload = toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events }));
  const header = { format: fileFormat, version: fileVersion, tenantId, batchId, events: events.length, payloadBytes: payload.length };
  return Buffer.concat([Buffer.from(`${JSON.stringify({ ...header, sha256: sha256(payload) })}\n`), payload]);
}

/** The batch a spool file holds, or why it holds none (cut short, altered, not a spool file). */
export function decodeSpoolFile(content: Uint8Array): { batch: SpooledBatch } | { problem: string } {
  const newline = content.indexOf(0x0a);
  if (newline < 0) return { problem: 'no header line' };
  let header: z.infer<typeof headerSchema>;
  try {
    header = headerSchema.parse(JSON.parse(Buffer.from(content.subarray(0, newline)).toString('utf8')));
  } catch {
    return { problem: 'unreadable header' };
  }
  const payload = content.subarray(newline + 1);
  if (payload.length !== header.payloadBytes) return { problem: `payload of ${payload.length} bytes, header says ${header.payloadBytes}` };
  if (sha256(payload) !== header.sha256) return { problem: 'payload checksum mismatch' };
  let events: AuditEvent[];
  try {
    events = fromBinary(AuditEventBatchSchema, payload).events;
  } catch {
    return { problem: 'payload is not an audit event batch' };
  }
  if (events.length !== header.events) return { problem: `${events.length} events, header says ${header.events}` };
  if (events.some((event) => event.tenantId !== header.tenantId)) return { problem: "events of another tenant than the header's" };
  return { batch: { tenantId: header.tenantId, batchId: header.batchId, events } };
}

/** Creates the directory (0700) or checks an existing one: a real directory of this user, made 0700. */
async function prepareDirectory(dir: string): Promise<void> {
  const info = await lstat(dir).catch(async (error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return lstat(dir);
  });
  if (!info.isDirectory()) throw new AppError('INVALID_CONFIG', `audit spool ${dir} is not a directory`);
  if (process.getuid && info.uid !== process.getuid()) {
    throw new AppError('INVALID_CONFIG', `audit spool ${dir} belongs to another user`);
  }
  if ((info.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
}

/** Makes a rename or a new file in `dir` durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface Entry {
  file: string;
  bytes: number;
  events: number;
}

/**
 * A bounded, crash-safe local spool of audit batches: one file per batch, replayed in order.
 *
 * - `append` writes `<seq>-<batch>.tmp` (mode 0600), fsyncs it, renames it to `.batch` and fsyncs
 *   the directory; only then does it resolve `true`. It resolves `false`, writing nothing, when the
 *   batch would take the spool beyond `maxBytes` or `maxEvents`. Appends run one at a time, so the
 *   sequence is the order of the calls.
 * - `oldest` reads and verifies the first batch (header, length, SHA-256, protobuf); a file that
 *   fails is renamed `*.corrupt`, logged and skipped — never replayed as garbage.
 * - `remove` deletes a batch once it is acknowledged. A removal lost in a crash only sends the batch
 *   again under the same ids, which JetStream and the audit consumer absorb.
 * - Opening adopts what a previous process left: `.batch` files are verified (bad ones set aside
 *   as above); a `.tmp` (a crash during its append, never acknowledged) is kept when it verifies
 *   whole and deleted when it does not.
 *
 * One process per directory: two processes sharing one would replay each other's batches.
 */
export async function openAuditSpool({ dir, maxBytes, maxEvents, logger }: AuditSpoolOptions) {
  await prepareDirectory(dir);
  const entries: Entry[] = [];
  const totals = { bytes: 0, events: 0 };
  let nextSeq = 1;
  let corrupt = 0;
  /** The append in progress: appends are serialised. */
  let appending: Promise<unknown> = Promise.resolve();

  const add = (entry: Entry) => {
    entries.push(entry);
    totals.bytes += entry.bytes;
    totals.events += entry.events;
  };
  const drop = (file: string) => {
    const at = entries.findIndex((entry) => entry.file === file);
    const [entry] = at < 0 ? [] : entries.splice(at, 1);
    if (entry) {
      totals.bytes -= entry.bytes;
      totals.events -= entry.events;
    }
  };
  const setAside = async (file: string, problem: string) => {
    corrupt += 1;
    drop(file);
    await rename(join(dir, file), join(dir, `${file}.corrupt`));
    logger.error({ dir, file: `${file}.corrupt`, problem }, 'audit spool file is damaged; set aside, not replayed');
  };

  let adopted = false;
  for (const name of (await readdir(dir)).sort()) {
    const match = fileName.exec(name);
    if (!match) continue;
    nextSeq = Math.max(nextSeq, Number(match[1]) + 1);
    const content = await readFile(join(dir, name));
    const decoded = decodeSpoolFile(content);
    if (match[3] === 'tmp') {
      if ('problem' in decoded) {
        await rm(join(dir, name), { force: true });
        logger.warn({ dir, file: name, problem: decoded.problem }, 'discarded a half-written audit spool file');
        continue;
      }
      const file = name.replace(/\.tmp$/, '.batch');
      await rename(join(dir, name), join(dir, file));
      adopted = true;
      add({ file, bytes: content.length, events: decoded.batch.events.length });
    } else if ('problem' in decoded) {
      await setAside(name, decoded.problem);
    } else {
      add({ file: name, bytes: content.length, events: decoded.batch.events.length });
    }
  }
  if (adopted) await syncDirectory(dir);
  if (entries.length > 0) logger.info({ dir, batches: entries.length, events: totals.events }, 'audit spool holds batches to replay');

  async function write(batch: SpooledBatch): Promise<boolean> {
    if (!batchIdPattern.test(batch.batchId)) throw new AppError('INVALID_ARGUMENT', 'a spooled batch id is 1-64 letters, digits or dashes');
    if (batch.events.length === 0) throw new AppError('INVALID_ARGUMENT', 'a spooled batch holds at least one event');
    const content = encodeSpoolFile(batch);
    if (totals.bytes + content.length > maxBytes || totals.events + batch.events.length > maxEvents) return false;
    const name = `${String(nextSeq).padStart(16, '0')}-${batch.batchId}`;
    nextSeq += 1;
    const temporary = join(dir, `${name}.tmp`);
    try {
      const handle = await open(temporary, 'wx', 0o600);
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, join(dir, `${name}.batch`));
      await syncDirectory(dir);
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw error;
    }
    add({ file: `${name}.batch`, bytes: content.length, events: batch.events.length });
    return true;
  }

  return {
    dir,

    /** Writes a batch durably behind the others; `false` (nothing written) when it would exceed a bound. */
    append(batch: SpooledBatch): Promise<boolean> {
      const written = appending.then(() => write(batch));
      appending = written.catch(() => undefined);
      return written;
    },

    /** The first batch still spooled, verified, with the file `remove` takes; undefined when empty. */
    async oldest(): Promise<(SpooledBatch & { file: string }) | undefined> {
      for (let entry = entries[0]; entry; entry = entries[0]) {
        let content: Buffer;
        try {
          content = await readFile(join(dir, entry.file));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
          drop(entry.file);
          continue;
        }
        const decoded = decodeSpoolFile(content);
        if ('batch' in decoded) return { ...decoded.batch, file: entry.file };
        await setAside(entry.file, decoded.problem);
      }
      return undefined;
    },

    /** Deletes a batch that JetStream acknowledged. */
    async remove(file: string): Promise<void> {
      await rm(join(dir, file), { force: true });
      drop(file);
    },

    /** Batches, events and bytes spooled now; files set aside as damaged since opening. */
    stats: () => ({ batches: entries.length, events: totals.events, bytes: totals.bytes, corrupt }),
  };
}

export type AuditSpool = Awaited<ReturnType<typeof openAuditSpool>>;
