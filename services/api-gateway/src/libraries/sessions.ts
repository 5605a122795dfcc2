import { AppError } from '@portcullis/kit';

/** The one Redis command the session check needs; ioredis fits it. */
export interface SessionKeyStore {
  exists(key: string): Promise<number>;
}

/**
 * Whether an access token's session is still live. The auth service keeps one key per
 * session (`<prefix>session:<sid>`) and deletes it when the session is revoked, so every
 * gateway replica sees a revocation on the next request. An unreachable store denies.
 */
export function createSessionCheck({ store, keyPrefix }: { store: SessionKeyStore; keyPrefix: string }) {
  return async function isSessionActive(sessionId: string): Promise<boolean> {
    try {
      return (await store.exists(`${keyPrefix}session:${sessionId}`)) === 1;
    } catch (error) {
      throw new AppError('DEPENDENCY_UNAVAILABLE', 'the session store is unavailable; request denied', { cause: error });
    }
  };
}

export type SessionCheck = ReturnType<typeof createSessionCheck>;
