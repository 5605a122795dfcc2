import { AppError } from '@portcullis/kit';

const VERSION = 'v1';
const MAX_ID = 9_223_372_036_854_775_807n;
const BODY = /^v1:([1-9][0-9]{0,18})$/;

/** Opaque cursor for "events older than this one": base64url of a versioned ordering key. */
export function encodePageToken(id: bigint): string {
  return Buffer.from(`${VERSION}:${id.toString()}`, 'utf8').toString('base64url');
}

/** The ordering key a page token stands for; anything not produced by encodePageToken is INVALID_ARGUMENT. */
export function decodePageToken(token: string): bigint {
  const invalid = () => new AppError('INVALID_ARGUMENT', 'page_token is malformed', { details: { field: 'page_token' } });
  if (token.length > 64 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  const match = BODY.exec(Buffer.from(token, 'base64url').toString('utf8'));
  const digits = match?.[1];
  if (digits === undefined) throw invalid();
  const id = BigInt(digits);
  // Re-encoding must give back the same text, so only canonical tokens are accepted.
  if (id > MAX_ID || encodePageToken(id) !== token) throw invalid();
  return id;
}
