import { AppError, capabilityNamePattern, isUuid, type GrpcClient } from '@portcullis/kit';
import { ApiKeyKind, type AuthService } from '@portcullis/proto/auth';

/** `pck_<16 × [a-z0-9]>_<43 × base64url>`, as the auth service issues them. */
const API_KEY = /^pck_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/;

const invalidKey = () => new AppError('UNAUTHENTICATED', 'invalid, expired or revoked API key');

/** The API key of an `X-API-Key` header; anything malformed is UNAUTHENTICATED before any lookup. */
export function apiKeyOf(header: string): string {
  if (!API_KEY.test(header)) throw invalidKey();
  return header;
}

export interface VerifiedApiKey {
  keyId: string;
  tenantId: string;
  /** `tenant`: tenant-wide, within its scopes and its creator's rights. `user`: acts as userId, within its scopes. */
  kind: 'tenant' | 'user';
  userId: string;
  /** Who created (or last rotated) the key: a tenant key is capped by this user's current rights. */
  createdBy: string;
  scopes: readonly string[];
}

/**
 * Verifies an API key with the auth service (which compares the hash in constant time and
 * refuses revoked, expired and rotated-out keys). An answer that is not a well-formed key
 * description is treated as a failure, never as a pass.
 */
export function createApiKeyVerifier({ auth }: { auth: Pick<GrpcClient<typeof AuthService>, 'verifyApiKey'> }) {
  return async function verifyApiKey(key: string, requestId: string): Promise<VerifiedApiKey> {
    const answer = await auth.verifyApiKey({ key: apiKeyOf(key) }, { requestId });
    const kind = answer.kind === ApiKeyKind.TENANT ? 'tenant' : answer.kind === ApiKeyKind.USER ? 'user' : undefined;
    if (
      kind === undefined ||
      !isUuid(answer.tenantId) ||
      (kind === 'user' && !isUuid(answer.userId)) ||
      !isUuid(answer.createdByUserId) ||
      answer.keyId.length === 0 ||
      !answer.scopes.every((scope) => capabilityNamePattern.test(scope))
    ) {
      throw invalidKey();
    }
    return {
      keyId: answer.keyId,
      tenantId: answer.tenantId,
      kind,
      userId: kind === 'user' ? answer.userId : '',
      createdBy: answer.createdByUserId,
      scopes: answer.scopes,
    };
  };
}

export type ApiKeyVerifier = ReturnType<typeof createApiKeyVerifier>;
