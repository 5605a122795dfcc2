import { type Metadata } from '@grpc/grpc-js';
import type { TextMapGetter, TextMapSetter } from '@opentelemetry/api';

/** gRPC metadata keys Portcullis sets. */
export const metadataKeys = {
  requestId: 'x-request-id',
  errorCode: 'portcullis-error-code',
  authorization: 'authorization',
} as const;

export const metadataSetter: TextMapSetter<Metadata> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

export const metadataGetter: TextMapGetter<Metadata> = {
  keys(carrier) {
    return Object.keys(carrier.getMap());
  },
  get(carrier, key) {
    const values = carrier.get(key).filter((v): v is string => typeof v === 'string');
    return values.length === 0 ? undefined : values;
  },
};

export function firstString(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

/** The token of an `authorization: Bearer <token>` entry, if there is exactly one such entry. */
export function bearerTokenOf(metadata: Metadata): string | undefined {
  const values = metadata.get(metadataKeys.authorization);
  if (values.length !== 1 || typeof values[0] !== 'string') return undefined;
  const match = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/.exec(values[0]);
  return match?.[1];
}
