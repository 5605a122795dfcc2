import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { createTargetGuard, parseAllowedTargets } from './target-guard.js';
import { createToolRegistry, requireCapability, requireToolName, type NewTool, type ToolRecord } from './tool-registry.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const assistant = '00000000-0000-4000-8000-0000000000a1';

function fakeStore() {
  const rows: ToolRecord[] = [];
  return {
    rows,
    async create(tenantId: string, tool: NewTool) {
      if (rows.some((r) => r.tenantId === tenantId && r.assistantId === tool.assistantId && r.name === tool.name)) {
        throw new AppError('ALREADY_EXISTS', 'duplicate');
      }
      const record = { id: `tool-${rows.length + 1}`, tenantId, ...tool };
      rows.push(record);
      return record;
    },
    async listForAssistant(tenantId: string, assistantId: string) {
      return rows.filter((r) => r.tenantId === tenantId && r.assistantId === assistantId);
    },
    async findByName(tenantId: string, assistantId: string, name: string) {
      return rows.find((r) => r.tenantId === tenantId && r.assistantId === assistantId && r.name === name);
    },
  };
}

const publicDns = async (host: string) => (host === 'internal.example' ? ['10.0.0.5'] : ['93.184.216.34']);

function registryWith(allowedPrivateTargets = '') {
  const store = fakeStore();
  const registry = createToolRegistry({
    store,
    guard: createTargetGuard({ allowedPrivateTargets: parseAllowedTargets(allowedPrivateTargets), resolve: publicDns }),
  });
  return { store, registry };
}

const valid = {
  tenantId: tenantA,
  assistantId: assistant,
  name: 'weather.lookup',
  description: '  Current weather  ',
  endpointUrl: 'https://tools.example/weather',
  capability: '',
};

describe('tool names and capabilities', () => {
  it.each(['a', 'weather', 'weather.lookup', 'get_user-2', '9lives', 'a'.repeat(64)])('accepts name %j', (name) => {
    expect(requireToolName(name)).toBe(name);
  });

  it.each(['', 'Weather', '-lead', '.lead', '_lead', 'has space', 'a/b', 'a'.repeat(65), 'ünïcode'])('rejects name %j', (name) => {
    expect(() => requireToolName(name)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('defaults an empty capability to tools:invoke and rejects malformed ones', () => {
    expect(requireCapability('')).toBe('tools:invoke');
    expect(requireCapability('tools:admin-run')).toBe('tools:admin-run');
    for (const bad of ['tools', 'tools:', ':invoke', 'Tools:Invoke', 'a:b:c']) {
      expect(() => requireCapability(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});

describe('tool registry', () => {
  it('stores a valid tool with a trimmed description and the default capability', async () => {
    const { registry, store } = registryWith();
    const tool = await registry.register(valid);
    expect(tool).toMatchObject({
      tenantId: tenantA,
      assistantId: assistant,
      name: 'weather.lookup',
      description: 'Current weather',
      endpointUrl: 'https://tools.example/weather',
      capability: 'tools:invoke',
    });
    expect(store.rows).toHaveLength(1);
  });

  it('rejects bad ids, names, URLs and descriptions without storing anything', async () => {
    const { registry, store } = registryWith();
    for (const change of [
      { tenantId: 'nope' },
      { assistantId: '' },
      { name: 'Bad Name' },
      { endpointUrl: 'https://u:p@tools.example/' },
      { endpointUrl: 'gopher://tools.example/' },
      { description: 'x'.repeat(1001) },
    ]) {
      await expect(registry.register({ ...valid, ...change })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(store.rows).toHaveLength(0);
  });

  it('refuses private targets unless that exact host:port is allowed', async () => {
    const { registry, store } = registryWith();
    await expect(registry.register({ ...valid, endpointUrl: 'http://internal.example/run' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('private'),
    });
    await expect(registry.register({ ...valid, endpointUrl: 'http://169.254.169.254/latest' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(store.rows).toHaveLength(0);
    const open = registryWith('127.0.0.1:8080');
    await expect(open.registry.register({ ...valid, endpointUrl: 'http://127.0.0.1:8080/run' })).resolves.toMatchObject({
      name: valid.name,
    });
    await expect(open.registry.register({ ...valid, name: 'other-port', endpointUrl: 'http://127.0.0.1:8081/run' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('private'),
    });
    expect(open.store.rows.map((r) => r.name)).toEqual([valid.name]);
  });

  it('reports a duplicate name as ALREADY_EXISTS and lists per assistant and tenant', async () => {
    const { registry } = registryWith();
    await registry.register(valid);
    await expect(registry.register(valid)).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await registry.register({ ...valid, tenantId: tenantB });
    expect((await registry.list(tenantA, assistant)).map((t) => t.tenantId)).toEqual([tenantA]);
    await expect(registry.list('bad', assistant)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
