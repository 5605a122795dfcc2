import { createPublicKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, CompactSign, compactVerify, exportJWK, type JWK } from 'jose';
import type { Logger } from '@portcullis/kit';

/** What a checkpoint states: the tenant's chain reached `chainSeq`, whose record hashes to `recordHash`. */
export interface CheckpointClaim {
  tenantId: string;
  chainSeq: bigint;
  recordHash: Buffer;
  signedAt: Date;
}

export interface SignedCheckpoint extends CheckpointClaim {
  keyId: string;
  /** Compact JWS (EdDSA) over the claim's JSON payload. */
  jws: string;
}

export const CHECKPOINT_JWS_TYPE = 'audit-checkpoint+jws';

interface CheckpointPayload {
  tenantId: string;
  chainSeq: string;
  recordHash: string;
  signedAt: string;
}

function payloadOf(claim: CheckpointClaim): CheckpointPayload {
  return {
    tenantId: claim.tenantId,
    chainSeq: claim.chainSeq.toString(),
    recordHash: claim.recordHash.toString('hex'),
    signedAt: claim.signedAt.toISOString(),
  };
}

export interface CheckpointKeys {
  /** Ed25519 private key checkpoints are signed with. */
  signingKey: KeyObject;
  /** Public keys of earlier signing keys, still trusted for checkpoints they signed. */
  previousKeys?: readonly KeyObject[];
}

/**
 * Signs checkpoints with the service's checkpoint key and checks them against every trusted key
 * (the current one and earlier ones, by `kid` = RFC 7638 thumbprint). A checkpoint holds only if
 * its signature is valid under the key it names and its payload states exactly the stored claim.
 */
export async function createCheckpointKeyring({ signingKey, previousKeys = [] }: CheckpointKeys) {
  if (signingKey.asymmetricKeyType !== 'ed25519' || signingKey.type !== 'private') {
    throw new Error('the checkpoint signing key must be an Ed25519 private key');
  }
  const trusted = new Map<string, { key: KeyObject; jwk: JWK }>();
  for (const key of [createPublicKey(signingKey), ...previousKeys]) {
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('checkpoint keys must be Ed25519 keys');
    const jwk = await exportJWK(key);
    const kid = await calculateJwkThumbprint(jwk);
    trusted.set(kid, { key, jwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' } });
  }
  const keyId = trusted.keys().next().value as string;
  const encoder = new TextEncoder();

  return {
    keyId,
    /** Public keys as JWK JSON, current key first. */
    publicKeys(): string[] {
      return [...trusted.values()].map(({ jwk }) => JSON.stringify(jwk));
    },

    async sign(claim: CheckpointClaim): Promise<SignedCheckpoint> {
      const jws = await new CompactSign(encoder.encode(JSON.stringify(payloadOf(claim))))
        .setProtectedHeader({ alg: 'EdDSA', kid: keyId, typ: CHECKPOINT_JWS_TYPE })
        .sign(signingKey);
      return { ...claim, keyId, jws };
    },

    /** True when the signature holds under a trusted key and states exactly this claim. */
    async verify(checkpoint: CheckpointClaim & { jws: string }): Promise<boolean> {
      try {
        const { payload, protectedHeader } = await compactVerify(checkpoint.jws, (header) => {
          const entry = header.kid === undefined ? undefined : trusted.get(header.kid);
          if (!entry || header.alg !== 'EdDSA') throw new Error('unknown checkpoint key');
          return entry.key;
        });
        if (protectedHeader.typ !== CHECKPOINT_JWS_TYPE) return false;
        const stated = JSON.parse(new TextDecoder().decode(payload)) as Partial<CheckpointPayload>;
        const expected = payloadOf(checkpoint);
        return (
          stated.tenantId === expected.tenantId &&
          stated.chainSeq === expected.chainSeq &&
          stated.recordHash === expected.recordHash &&
          stated.signedAt === expected.signedAt
        );
      } catch {
        return false;
      }
    },
  };
}

export type CheckpointKeyring = Awaited<ReturnType<typeof createCheckpointKeyring>>;

export interface CheckpointerDeps {
  /** Tenants whose chain head moved past their last checkpoint (at most `limit`). */
  grownChains(limit: number): Promise<string[]>;
  chainHead(tenantId: string): Promise<{ seq: bigint; hash: Buffer } | undefined>;
  /** Stores the checkpoint and moves the head's checkpointed mark; a repeat of one already stored is a no-op. */
  storeCheckpoint(checkpoint: SignedCheckpoint): Promise<void>;
  keyring: Pick<CheckpointKeyring, 'sign'>;
  logger: Logger;
  now?: () => Date;
}

/**
 * One checkpoint round: every chain that grew since its last checkpoint gets a signed checkpoint
 * of its current head. Replicas may run rounds at the same time; a checkpoint is stored once.
 */
export function createCheckpointer({ grownChains, chainHead, storeCheckpoint, keyring, logger, now = () => new Date() }: CheckpointerDeps) {
  const batch = 500;
  return async function checkpointRound(): Promise<number> {
    let made = 0;
    // A chain that grows again during the round is checkpointed in the next one, not again now.
    const done = new Set<string>();
    for (;;) {
      const tenants = (await grownChains(done.size + batch)).filter((tenantId) => !done.has(tenantId));
      if (tenants.length === 0) break;
      for (const tenantId of tenants) {
        done.add(tenantId);
        const head = await chainHead(tenantId);
        if (!head || head.seq === 0n) continue;
        await storeCheckpoint(await keyring.sign({ tenantId, chainSeq: head.seq, recordHash: head.hash, signedAt: now() }));
        made += 1;
      }
    }
    if (made > 0) logger.info({ checkpoints: made }, 'audit chains checkpointed');
    return made;
  };
}
