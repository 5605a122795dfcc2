import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger } from '@portcullis/kit';
import { TenantStatus } from '@portcullis/proto/common';
import { ResolveContextResponseSchema } from '@portcullis/proto/tenant';
import { createContextCache, type ResolveContextCall } from '../libraries/context-cache.js';
import { createResolveContext } from './resolve-context.js';
import type { RequestInfo } from './types.js';
import { requestInfo } from '../test-support/pipeline-fakes.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const assistantA = '00000000-0000-4000-8000-0000000000a1';

const request = (overrides: Partial<RequestInfo>): RequestInfo => ({
  ...requestInfo({ requestId: 'req-1', host: 'chat.alpha.example' }),
  ...overrides,
});

/** Step 1 over the context cache (Redis unreachable, so only the registry and memory answer). */
function setup() {
  const truth = { suspended: false };
  const calls: string[] = [];
  const resolveContext: ResolveContextCall = async ({ host = '', assistantId = '' }) => {
    calls.push(assistantId || host);
    if (truth.suspended) throw new AppError('TENANT_SUSPENDED', 'tenant is suspended');
    return create(ResolveContextResponseSchema, {
      context: { tenantId: tenantA, tenantName: 'Alpha', tenantStatus: TenantStatus.ACTIVE, tenantPlan: 'pro', assistantId: assistantA },
    });
  };
  const cache = createContextCache({
    registry: { resolveContext },
    store: {
      mget: () => Promise.reject(new Error('redis down')),
      set: () => Promise.reject(new Error('redis down')),
      incr: () => Promise.reject(new Error('redis down')),
    },
    keyPrefix: 'test:',
    localTtlMs: 5_000,
    remoteTtlMs: 60_000,
    refusalTtlMs: 5_000,
    maxEntries: 10,
    logger: createLogger({ name: 'resolve-context-test', level: 'silent' }),
  });
  const step = createResolveContext({ tenants: cache, platformHosts: ['localhost'] });
  return { step, cache, truth, calls };
}

describe('resolve context (step 1) over the context cache', () => {
  it('resolves a domain and an assistant id to the tenant, asking the registry once per key', async () => {
    const { step, calls } = setup();
    const expected = { tenantId: tenantA, tenantName: 'Alpha', plan: 'pro', assistantId: assistantA };
    expect((await step(request({}))).target).toEqual(expected);
    expect((await step(request({}))).target).toEqual(expected);
    expect((await step(request({ assistantId: assistantA }))).target).toEqual(expected);
    expect(calls).toEqual(['chat.alpha.example', assistantA]);
  });

  it('refuses a suspended tenant with TENANT_SUSPENDED and no data, until the change notice of its reactivation', async () => {
    const { step, cache, truth } = setup();
    truth.suspended = true;
    const error: unknown = await step(request({})).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toMatchObject({ code: 'TENANT_SUSPENDED', message: 'tenant is suspended', details: undefined });
    // By assistant id, the refusal waits for step 2 (the caller must be authenticated first).
    const byAssistant = await step(request({ assistantId: assistantA }));
    expect(byAssistant.target).toBeUndefined();
    expect(byAssistant.assistantRefusal).toMatchObject({ code: 'TENANT_SUSPENDED', details: undefined });
    truth.suspended = false;
    await expect(step(request({}))).rejects.toMatchObject({ code: 'TENANT_SUSPENDED' });
    await cache.invalidate(tenantA);
    await expect(step(request({}))).resolves.toMatchObject({ target: { tenantId: tenantA } });
  });

  it('leaves a platform host to step 2 and refuses a malformed assistant id without asking anyone', async () => {
    const { step, calls } = setup();
    expect((await step(request({ host: 'localhost' }))).target).toBeUndefined();
    await expect(step(request({ assistantId: 'not-a-uuid' }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(calls).toEqual([]);
  });
});
