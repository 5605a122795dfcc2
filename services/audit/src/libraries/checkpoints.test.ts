import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@portcullis/kit';
import { createCheckpointer, createCheckpointKeyring, type SignedCheckpoint } from './checkpoints.js';

const ed25519 = () => generateKeyPairSync('ed25519');
const claim = () => ({
  tenantId: randomUUID(),
  chainSeq: 42n,
  recordHash: Buffer.alloc(32, 7),
  signedAt: new Date('2026-12-03T12:00:00Z'),
});

describe('checkpoint keyring', () => {
  it('signs a checkpoint that verifies, and only for exactly the claim it states', async () => {
    const keyring = await createCheckpointKeyring({ signingKey: ed25519().privateKey });
    const signed = await keyring.sign(claim());
    expect(signed.keyId).toBe(keyring.keyId);
    await expect(keyring.verify(signed)).resolves.toBe(true);
    await expect(keyring.verify({ ...signed, chainSeq: 43n })).resolves.toBe(false);
    await expect(keyring.verify({ ...signed, recordHash: Buffer.alloc(32, 8) })).resolves.toBe(false);
    await expect(keyring.verify({ ...signed, tenantId: randomUUID() })).resolves.toBe(false);
    await expect(keyring.verify({ ...signed, signedAt: new Date('2026-12-03T12:00:01Z') })).resolves.toBe(false);
  });

  it('refuses a checkpoint signed by a key it does not trust, and one whose signature was altered', async () => {
    const keyring = await createCheckpointKeyring({ signingKey: ed25519().privateKey });
    const stranger = await createCheckpointKeyring({ signingKey: ed25519().privateKey });
    const foreign = await stranger.sign(claim());
    await expect(keyring.verify(foreign)).resolves.toBe(false);
    const signed = await keyring.sign(claim());
    const [header, payload, signature] = signed.jws.split('.') as [string, string, string];
    const flipped = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    await expect(keyring.verify({ ...signed, jws: flipped })).resolves.toBe(false);
    await expect(keyring.verify({ ...signed, jws: 'not a jws' })).resolves.toBe(false);
  });

  it('still trusts what an earlier key signed, and publishes the current key first', async () => {
    const old = ed25519();
    const before = await createCheckpointKeyring({ signingKey: old.privateKey });
    const signedEarlier = await before.sign(claim());
    const after = await createCheckpointKeyring({ signingKey: ed25519().privateKey, previousKeys: [old.publicKey] });
    await expect(after.verify(signedEarlier)).resolves.toBe(true);
    const keys = after.publicKeys().map((text) => JSON.parse(text) as { kid: string; d?: string });
    expect(keys.map((key) => key.kid)).toEqual([after.keyId, before.keyId]);
    // Public keys only: no private part is ever published.
    expect(keys.every((key) => key.d === undefined)).toBe(true);
  });

  it('refuses a signing key that is not Ed25519', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expect(createCheckpointKeyring({ signingKey: privateKey })).rejects.toThrow(/Ed25519/);
  });
});

describe('checkpointer', () => {
  const logger = createLogger({ name: 'checkpoints-test', level: 'silent' });

  it('signs the current head of every grown chain once per round', async () => {
    const keyring = await createCheckpointKeyring({ signingKey: ed25519().privateKey });
    const heads = new Map<string, { seq: bigint; hash: Buffer }>([
      [randomUUID(), { seq: 3n, hash: Buffer.alloc(32, 1) }],
      [randomUUID(), { seq: 9n, hash: Buffer.alloc(32, 2) }],
    ]);
    const stored: SignedCheckpoint[] = [];
    const checkpointed = new Map<string, bigint>();
    const round = createCheckpointer({
      // A chain keeps growing during the round: it is still checkpointed once in this round.
      grownChains: (limit) => Promise.resolve([...heads.keys()].slice(0, limit)),
      chainHead: (tenantId) => Promise.resolve(heads.get(tenantId)),
      storeCheckpoint: (checkpoint) => {
        stored.push(checkpoint);
        checkpointed.set(checkpoint.tenantId, checkpoint.chainSeq);
        return Promise.resolve();
      },
      keyring,
      logger,
    });
    await expect(round()).resolves.toBe(2);
    expect(stored.map((c) => [c.tenantId, c.chainSeq])).toEqual([...heads].map(([tenantId, head]) => [tenantId, head.seq]));
    for (const checkpoint of stored) await expect(keyring.verify(checkpoint)).resolves.toBe(true);
  });
});
