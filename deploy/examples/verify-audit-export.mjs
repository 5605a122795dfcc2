#!/usr/bin/env node
// Checks a Portcullis audit export (JSON Lines from GET /api/audit/export) without the platform:
// every record's hash, the links between consecutive records, every signed checkpoint's signature
// under the keys in the export's header, and that each checkpoint names the exported record's hash.
//
//   node deploy/examples/verify-audit-export.mjs export.jsonl [trusted-keys.json]
//
// Without a trusted-keys file the keys in the export's header are used: that proves the export is
// consistent with itself. Pass the audit service's checkpoint public keys (a JSON list of JWKs,
// obtained separately) to prove the checkpoints were signed by the platform.
// Exit status 0: the export holds; 1: it does not (the first problem is printed); 2: bad usage.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const GENESIS = '00'.repeat(32);

/** Names of the stored fields in a record's canonical text, after its version tag and sequence number. */
const canonicalFields = [
  'eventId',
  'tenantId',
  'kind',
  'principalKind',
  'principalId',
  'principalRole',
  'principalTenantId',
  'assistantId',
  'object',
  'action',
  'outcome',
  'reason',
  'traceId',
  'requestId',
  'occurredAt',
  'attributes',
];

function checkpointHolds(line, keys) {
  const [header, payload, signature] = String(line.jws).split('.');
  if (!header || !payload || !signature) return 'checkpoint is not a compact JWS';
  const protectedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  const key = keys.get(protectedHeader.kid);
  if (!key || protectedHeader.alg !== 'EdDSA') return `checkpoint signed by an unknown key (${String(protectedHeader.kid)})`;
  if (!verify(null, Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url')))
    return 'checkpoint signature does not hold';
  const stated = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  if (stated.chainSeq !== line.seq || stated.recordHash !== line.recordHash || stated.signedAt !== line.signedAt) {
    return 'checkpoint line differs from what was signed';
  }
  return stated;
}

/**
 * Verifies an export's text. Returns `{ ok, records, checkpoints, problem }`: `problem` names the
 * first line that does not hold (1-based) and why.
 * @param {string} text
 * @param {{ trustedKeys?: object[] }} [options]
 */
export function verifyAuditExport(text, { trustedKeys } = {}) {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const fail = (index, why) => ({ ok: false, records: 0, checkpoints: 0, problem: { line: index + 1, why } });
  let parsed;
  try {
    parsed = lines.map((line) => JSON.parse(line));
  } catch {
    return fail(0, 'not JSON Lines');
  }
  const head = parsed[0];
  if (head?.type !== 'export') return fail(0, 'the first line is not the export header');
  const keys = new Map((trustedKeys ?? head.checkpointKeys ?? []).map((jwk) => [jwk.kid, createPublicKey({ key: jwk, format: 'jwk' })]));
  const hashes = new Map();
  let previous;
  let records = 0;
  let checkpoints = 0;
  for (const [index, line] of parsed.entries()) {
    if (index === 0) continue;
    if (line.type === 'event') {
      const { seq, prevHash, recordHash, canonical } = line;
      let values;
      try {
        values = JSON.parse(canonical);
      } catch {
        return fail(index, 'record has no canonical text');
      }
      if (!Array.isArray(values) || values[0] !== 'portcullis-audit-v1' || values[1] !== seq)
        return fail(index, 'canonical text names another record');
      const named = Object.fromEntries(canonicalFields.map((field, at) => [field, values[at + 2] ?? null]));
      named.attributes = Object.fromEntries(named.attributes ?? []);
      if (JSON.stringify(named) !== JSON.stringify(line.record) || named.tenantId !== head.tenantId) {
        return fail(index, 'record fields differ from its canonical text');
      }
      const hash = createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(canonical).digest('hex');
      if (hash !== recordHash) return fail(index, 'record hash does not hold');
      // Consecutive records must link; a filtered export skips records, so only neighbours are linked.
      if (previous && BigInt(seq) === BigInt(previous.seq) + 1n && prevHash !== previous.recordHash) {
        return fail(index, 'link to the previous record does not hold');
      }
      if (BigInt(seq) === 1n && prevHash !== GENESIS) return fail(index, 'the first record does not start the chain');
      hashes.set(seq, recordHash);
      previous = { seq, recordHash };
      records += 1;
    } else if (line.type === 'checkpoint') {
      const stated = checkpointHolds(line, keys);
      if (typeof stated === 'string') return fail(index, stated);
      if (stated.tenantId !== head.tenantId) return fail(index, 'checkpoint of another tenant');
      const exported = hashes.get(line.seq);
      if (exported !== undefined && exported !== line.recordHash) return fail(index, 'checkpoint contradicts the exported record');
      checkpoints += 1;
    } else if (line.type === 'end') {
      if (index !== parsed.length - 1) return fail(index, 'lines after the end line');
      if (line.records !== records || line.checkpoints !== checkpoints) return fail(index, 'end line counts differ from the lines');
      return { ok: true, records, checkpoints, problem: null };
    } else {
      return fail(index, `unknown line type ${String(line.type)}`);
    }
  }
  return fail(parsed.length - 1, 'no end line: the export is incomplete');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [file, keysFile] = process.argv.slice(2);
  if (!file) {
    console.error('usage: verify-audit-export.mjs <export.jsonl> [trusted-keys.json]');
    process.exit(2);
  }
  const trustedKeys = keysFile ? JSON.parse(readFileSync(keysFile, 'utf8')) : undefined;
  const verdict = verifyAuditExport(readFileSync(file === '-' ? 0 : file, 'utf8'), { trustedKeys });
  console.log(JSON.stringify(verdict));
  process.exit(verdict.ok ? 0 : 1);
}
