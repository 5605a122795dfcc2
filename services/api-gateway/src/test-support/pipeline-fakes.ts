// Fakes shared by the gateway's unit tests (passed into factories; nothing is module-mocked).
import { defaultRateLimits } from '../libraries/rate-limit-config.js';
import type { RateLimitState } from '../libraries/rate-limiter.js';
import type { RequestInfo } from '../pipeline/index.js';

/** A request as the pipeline sees it: a bearer-token GET unless overridden. */
export function requestInfo(overrides: Partial<RequestInfo> = {}): RequestInfo {
  return {
    requestId: 'r1',
    host: 'alpha.example',
    assistantId: undefined,
    authorization: undefined,
    apiKey: undefined,
    sessionCookie: undefined,
    csrfToken: undefined,
    changesState: false,
    clientIp: '127.0.0.1',
    userAgent: 'test',
    ...overrides,
  };
}

export const roomyRateLimit: RateLimitState = { limit: 1000, remaining: 999, resetSeconds: 60, windowSeconds: 60 };

/** Pipeline deps of the steps a test does not exercise: no limit reached, no cookie session valid. */
export const passThroughLimits = {
  consumeRateLimit: Object.assign(() => Promise.resolve(roomyRateLimit), { refund: () => Promise.resolve() }),
  rateLimits: defaultRateLimits,
  isValidCsrfToken: () => false,
};
