import { describe, expect, it } from '@jest/globals';
import { createContextResolver } from './context-resolution.js';
import type { ContextRecord } from './records.js';

const assistantA = '55555555-5555-4555-8555-555555555555';
const assistantB = '66666666-6666-4666-8666-666666666666';

const tenantA = '88888888-8888-4888-8888-888888888888';
const tenantB = '99999999-9999-4999-8999-999999999999';
const active: ContextRecord = { tenantId: tenantA, tenantName: 'Acme', tenantStatus: 'active', tenantPlan: 'pro', assistantId: assistantA };
const suspended: ContextRecord = {
  tenantId: tenantB,
  tenantName: 'Shady',
  tenantStatus: 'suspended',
  tenantPlan: 'free',
  assistantId: assistantB,
};

function setup() {
  const asked: string[] = [];
  const resolver = createContextResolver({
    lookups: {
      async byHost(host) {
        asked.push(`host ${host}`);
        return { 'chat.acme.example': active, 'shady.example': suspended }[host];
      },
      async byTenant(id) {
        asked.push(`tenant ${id}`);
        return { [tenantA]: { ...active, assistantId: '' }, [tenantB]: { ...suspended, assistantId: '' } }[id];
      },
      async byAssistant(id) {
        asked.push(`assistant ${id}`);
        return { [assistantA]: active, [assistantB]: suspended }[id];
      },
    },
  });
  return { resolver, asked };
}

describe('context resolution', () => {
  it('matches the host case-insensitively without its port', async () => {
    const { resolver, asked } = setup();
    await expect(resolver.resolve({ host: 'CHAT.Acme.example:8443', assistantId: '', tenantId: '' })).resolves.toEqual(active);
    expect(asked).toEqual(['host chat.acme.example']);
  });

  it('prefers the assistant id over the host', async () => {
    const { resolver, asked } = setup();
    await expect(resolver.resolve({ host: 'shady.example', assistantId: assistantA, tenantId: tenantB })).resolves.toEqual(active);
    expect(asked).toEqual([`assistant ${assistantA}`]);
  });

  it('resolves a tenant id when no assistant id is given, ahead of the host', async () => {
    const { resolver, asked } = setup();
    await expect(resolver.resolve({ host: 'shady.example', assistantId: '', tenantId: tenantA.toUpperCase() })).resolves.toEqual({
      ...active,
      assistantId: '',
    });
    expect(asked).toEqual([`tenant ${tenantA}`]);
    await expect(resolver.resolve({ host: '', assistantId: '', tenantId: '77777777-7777-4777-8777-777777777777' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(resolver.resolve({ host: '', assistantId: '', tenantId: 'nope' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'tenant_id' },
    });
  });

  it('answers NOT_FOUND for an unknown host or assistant', async () => {
    const { resolver } = setup();
    await expect(resolver.resolve({ host: 'nobody.example', assistantId: '', tenantId: '' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'no tenant is configured for this host',
    });
    await expect(resolver.resolve({ host: '', assistantId: '77777777-7777-4777-8777-777777777777', tenantId: '' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'no tenant is configured for this assistant',
    });
  });

  it('refuses a suspended tenant without any of its data', async () => {
    const { resolver } = setup();
    for (const request of [
      { host: 'shady.example', assistantId: '', tenantId: '' },
      { host: '', assistantId: assistantB, tenantId: '' },
      { host: '', assistantId: '', tenantId: tenantB },
    ]) {
      const error: unknown = await resolver.resolve(request).catch((thrown: unknown) => thrown);
      expect(error).toMatchObject({ code: 'TENANT_SUSPENDED', details: undefined });
      expect(JSON.stringify(error) + String(error)).not.toMatch(/Shady|9999/);
    }
  });

  it('rejects empty and malformed input', async () => {
    const { resolver, asked } = setup();
    await expect(resolver.resolve({ host: ' ', assistantId: '', tenantId: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(resolver.resolve({ host: '', assistantId: 'abc', tenantId: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(resolver.resolve({ host: 'a b', assistantId: '', tenantId: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(asked).toEqual([]);
  });
});
