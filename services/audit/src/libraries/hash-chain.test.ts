import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { AuditRecord } from './audit-record.js';
import { chainHashOf, createChainVerifier, extendChain, genesisHash, verifyChain, type ChainedRecord } from './hash-chain.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const record = (n: number, over: Partial<AuditRecord> = {}): AuditRecord => ({
  eventId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  tenantId,
  kind: 'authz.decision',
  principalKind: 'user',
  principalId: 'u1',
  principalRole: 'owner',
  principalTenantId: tenantId,
  assistantId: null,
  object: 'tools',
  action: 'invoke',
  outcome: 'allow',
  reason: `reason ${String(n)}`,
  traceId: null,
  requestId: `r${String(n)}`,
  occurredAt: new Date(Date.UTC(2026, 11, 3, 12, 0, n)),
  attributes: { b: '2', a: '1' },
  ...over,
});

async function* each(records: readonly ChainedRecord[]) {
  for (const r of records) yield r;
}
const headOf = (chain: readonly ChainedRecord[]) => {
  const last = chain[chain.length - 1];
  return last ? { seq: last.chainSeq, hash: last.recordHash } : undefined;
};

describe('audit hash chain', () => {
  it('changes the hash for any change of a field, the sequence number or the previous hash', () => {
    const base = chainHashOf(genesisHash, 1n, record(1));
    expect(chainHashOf(genesisHash, 1n, record(1))).toEqual(base);
    // Attribute order does not matter (jsonb reorders keys); their content does.
    expect(chainHashOf(genesisHash, 1n, record(1, { attributes: { a: '1', b: '2' } }))).toEqual(base);
    for (const changed of [
      record(1, { reason: 'other' }),
      record(1, { principalId: 'u2' }),
      record(1, { occurredAt: new Date(Date.UTC(2026, 11, 3, 12, 0, 2)) }),
      record(1, { attributes: { a: '1', b: '3' } }),
      record(1, { assistantId: '' }),
    ]) {
      expect(chainHashOf(genesisHash, 1n, changed)).not.toEqual(base);
    }
    expect(chainHashOf(genesisHash, 2n, record(1))).not.toEqual(base);
    expect(chainHashOf(Buffer.alloc(32, 1), 1n, record(1))).not.toEqual(base);
  });

  it('verifies a chain built in several appends as intact', async () => {
    const first = extendChain({ seq: 0n, hash: genesisHash }, [record(1), record(2)]);
    const second = extendChain(headOf(first) ?? { seq: 0n, hash: genesisHash }, [record(3)]);
    const chain = [...first, ...second];
    expect(chain.map((r) => r.chainSeq)).toEqual([1n, 2n, 3n]);
    await expect(verifyChain(each(chain), headOf(chain))).resolves.toEqual({ intact: true, recordsChecked: 3 });
    await expect(verifyChain(each([]), undefined)).resolves.toEqual({ intact: true, recordsChecked: 0 });
  });

  it('reports the first broken link and why', async () => {
    const chain = extendChain(
      { seq: 0n, hash: genesisHash },
      [1, 2, 3, 4].map((n) => record(n)),
    );
    const head = headOf(chain);
    const at = (i: number) => chain[i] as ChainedRecord;
    const cases: [ChainedRecord[], { chainSeq: bigint; reason: string }][] = [
      [[at(0), { ...at(1), reason: 'forged' }, at(2), at(3)], { chainSeq: 2n, reason: 'record_altered' }],
      [[at(0), at(1), { ...at(2), prevHash: Buffer.alloc(32, 7) }, at(3)], { chainSeq: 3n, reason: 'link_altered' }],
      [[at(0), at(2), at(3)], { chainSeq: 2n, reason: 'record_missing' }],
      [[at(0), at(1), at(2)], { chainSeq: 4n, reason: 'head_mismatch' }],
    ];
    for (const [records, expected] of cases) {
      const verdict = await verifyChain(each(records), head);
      expect(verdict.intact).toBe(false);
      expect(verdict.firstBroken).toMatchObject(expected);
    }
  });

  it('finds any single changed record of a random chain', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 12 }), fc.nat(), fc.string({ minLength: 1 }), async (length, pick, forged) => {
        const chain = extendChain(
          { seq: 0n, hash: genesisHash },
          Array.from({ length }, (_, n) => record(n + 1)),
        );
        const index = pick % length;
        const target = chain[index] as ChainedRecord;
        if (target.reason === forged) return;
        const tampered = chain.map((r, i) => (i === index ? { ...r, reason: forged } : r));
        const verdict = await verifyChain(each(tampered), headOf(chain));
        expect(verdict.firstBroken).toMatchObject({ chainSeq: BigInt(index + 1), reason: 'record_altered' });
      }),
    );
  });

  it('reads the stored chain page by page up to the head it read first', async () => {
    const chain = extendChain(
      { seq: 0n, hash: genesisHash },
      [1, 2, 3, 4, 5].map((n) => record(n)),
    );
    const pages: bigint[] = [];
    const verify = createChainVerifier(
      {
        listChain: (_tenant, { afterSeq, limit }) => {
          pages.push(afterSeq);
          return Promise.resolve(chain.filter((r) => r.chainSeq > afterSeq).slice(0, limit));
        },
        // A record appended after the head was read is not judged.
        chainHead: () => Promise.resolve({ seq: 4n, hash: (chain[3] as ChainedRecord).recordHash }),
      },
      undefined,
      { pageSize: 2 },
    );
    await expect(verify(tenantId)).resolves.toEqual({ intact: true, recordsChecked: 4 });
    expect(pages).toEqual([0n, 2n]);
  });
});

describe('audit hash chain with signed checkpoints', () => {
  const chain = extendChain(
    { seq: 0n, hash: genesisHash },
    [1, 2, 3, 4, 5].map((n) => record(n)),
  );
  const at = (seq: number) => chain[seq - 1] as ChainedRecord;
  const checkpoint = (seq: number, over: Partial<{ recordHash: Buffer; signatureValid: boolean }> = {}) => ({
    chainSeq: BigInt(seq),
    recordHash: at(seq).recordHash,
    signatureValid: true,
    ...over,
  });
  async function* checkpoints(list: ReturnType<typeof checkpoint>[]) {
    for (const c of list) yield c;
  }

  it('holds when every checkpoint names its record as stored', async () => {
    await expect(verifyChain(each(chain), headOf(chain), checkpoints([checkpoint(2), checkpoint(5)]))).resolves.toEqual({
      intact: true,
      recordsChecked: 5,
    });
  });

  it('finds a chain rewritten with every hash recomputed, at the first checkpoint it contradicts', async () => {
    // Someone with write access changes record 3 and recomputes every hash after it and the head:
    // the chain alone holds, but the checkpoint signed over record 4 does not.
    const rewritten = extendChain({ seq: 2n, hash: at(2).recordHash }, [record(3, { outcome: 'deny' }), record(4), record(5)]);
    const forged = [at(1), at(2), ...rewritten];
    await expect(verifyChain(each(forged), headOf(forged))).resolves.toMatchObject({ intact: true });
    await expect(verifyChain(each(forged), headOf(forged), checkpoints([checkpoint(2), checkpoint(4)]))).resolves.toMatchObject({
      intact: false,
      firstBroken: { chainSeq: 4n, eventId: at(4).eventId, reason: 'checkpoint_mismatch' },
    });
  });

  it('finds a chain cut back below a signed checkpoint, even with its head moved back', async () => {
    const cut = chain.slice(0, 3);
    await expect(verifyChain(each(cut), headOf(cut), checkpoints([checkpoint(2), checkpoint(5)]))).resolves.toMatchObject({
      intact: false,
      firstBroken: { chainSeq: 5n, eventId: at(3).eventId, reason: 'checkpoint_mismatch' },
    });
  });

  it('reports a checkpoint whose signature does not hold', async () => {
    await expect(verifyChain(each(chain), headOf(chain), checkpoints([checkpoint(3, { signatureValid: false })]))).resolves.toMatchObject({
      intact: false,
      firstBroken: { chainSeq: 3n, reason: 'checkpoint_unverifiable' },
    });
  });

  it('judges only checkpoints signed before the verification began, and verifies their signatures', async () => {
    const signedBefore = new Date('2026-12-03T10:00:00Z');
    const startedAt = new Date('2026-12-03T10:00:01Z');
    const verified: bigint[] = [];
    const verify = createChainVerifier(
      {
        listChain: (_tenant, { afterSeq, limit }) => Promise.resolve(chain.filter((r) => r.chainSeq > afterSeq).slice(0, limit)),
        chainHead: () => Promise.resolve({ seq: 4n, hash: at(4).recordHash }),
      },
      {
        // A checkpoint over record 5 was made after the head was read: not judged.
        listCheckpoints: (_tenant, { fromSeq }) =>
          Promise.resolve(
            [
              { tenantId, chainSeq: 2n, recordHash: at(2).recordHash, signedAt: signedBefore, jws: 'x' },
              { tenantId, chainSeq: 5n, recordHash: at(5).recordHash, signedAt: new Date('2026-12-03T10:00:02Z'), jws: 'y' },
            ].filter((c) => c.chainSeq >= fromSeq),
          ),
        verify: (c) => {
          verified.push(c.chainSeq);
          return Promise.resolve(true);
        },
      },
      { now: () => startedAt },
    );
    await expect(verify(tenantId)).resolves.toEqual({ intact: true, recordsChecked: 4 });
    expect(verified).toEqual([2n]);
  });
});
