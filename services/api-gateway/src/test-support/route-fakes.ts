// Fakes for every route group's dependencies, for tests that build the whole app (the per-route
// security suite, the OpenAPI document) without running any route's downstream call.
import { AppError } from '@portcullis/kit';
import { createCookieSessions } from '../libraries/cookie-sessions.js';
import type { RouteDeps } from '../routes/index.js';

/**
 * A client whose every method fails loudly unless `answers` names it: a route handler reached
 * where a test expected the pipeline to refuse shows up as an INTERNAL error, never a pass.
 */
// The return type is whatever client the caller needs: the proxy answers any method name.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export function fakeClient<T extends object>(answers: Record<string, (request: unknown) => Promise<unknown>> = {}): T {
  return new Proxy({} as T, {
    get(_target, method: string | symbol) {
      if (typeof method !== 'string' || method === 'then') return undefined;
      if (method === 'isConnected') return () => true;
      return answers[method] ?? (() => Promise.reject(new AppError('INTERNAL', `fake client: ${method} was called but not faked`)));
    },
  });
}

export const testCsrfSecret = Buffer.alloc(32, 7);

/** Deps for createRoutes where nothing downstream answers unless given in `overrides`. */
export function fakeRouteDeps(overrides: Partial<RouteDeps> = {}): RouteDeps {
  const cookieSessions = createCookieSessions({ secure: true, csrfSecret: testCsrfSecret });
  const auth = fakeClient<RouteDeps['public']['auth']>();
  const tenants = fakeClient<RouteDeps['tenants']['tenants']>();
  return {
    public: {
      auth,
      tenants: fakeClient(),
      devices: fakeClient(),
      fetchJwks: () => Promise.resolve({ keys: [] }),
      secureCookies: true,
      cookieSessions,
    },
    sessions: { auth: fakeClient(), cookieSessions },
    apiKeys: { auth: fakeClient(), policy: fakeClient() },
    robots: { auth: fakeClient() },
    serviceTokens: { auth: fakeClient() },
    access: { policy: fakeClient(), tenants: fakeClient() },
    tenants: { tenants },
    tools: { tools: fakeClient() },
    devices: { devices: fakeClient() },
    audit: { audit: fakeClient() },
    records: { audit: fakeClient() },
    ...overrides,
  };
}
