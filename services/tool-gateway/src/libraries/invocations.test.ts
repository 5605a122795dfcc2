import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AppError, type AuditEventInit } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { create } from '@bufbuild/protobuf';
import { PrincipalKind, PrincipalSchema } from '@portcullis/proto/common';
import type { UpstreamResponse } from './http-tool-client.js';
import { createInvocationLibrary, MAX_INPUT_BYTES } from './invocations.js';
import { createTargetGuard, type Resolver } from './target-guard.js';
import type { ToolRecord } from './tool-registry.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const assistant = '00000000-0000-4000-8000-0000000000a1';
const principal = create(PrincipalSchema, { kind: PrincipalKind.USER, id: 'user-1', tenantId: tenantA });
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

const weather: ToolRecord = {
  id: 'tool-1',
  tenantId: tenantA,
  assistantId: assistant,
  name: 'weather',
  description: '',
  endpointUrl: 'https://weather.example/run',
  capability: 'tools:invoke',
};

interface Setup {
  answer?: () => Promise<UpstreamResponse>;
  resolve?: Resolver;
  auditFails?: boolean;
}

function setup({ answer = async () => ({ status: 200, body: '{"temp":21}' }), resolve, auditFails = false }: Setup = {}) {
  const calls: { url: string; body: string }[] = [];
  const events: AuditEventInit[] = [];
  const library = createInvocationLibrary({
    tools: {
      async findByName(tenantId, assistantId, name) {
        return [weather].find((t) => t.tenantId === tenantId && t.assistantId === assistantId && t.name === name);
      },
    },
    guard: createTargetGuard({ allowedPrivateTargets: [], resolve: resolve ?? (async () => ['93.184.216.34']) }),
    http: {
      async post(url, body) {
        calls.push({ url: url.toString(), body });
        return answer();
      },
    },
    audit: {
      async publish(event) {
        if (auditFails) throw new AppError('DEPENDENCY_UNAVAILABLE', 'event bus did not accept the event');
        events.push(event);
        return 'event-id';
      },
    },
  });
  return { library, calls, events };
}

const request = { tenantId: tenantA, assistantId: assistant, toolName: 'weather', inputJson: '{"city":"Oslo"}', principal };

describe('invocation library', () => {
  it('calls the tool and returns its output with both hashes, recording a SUCCESS provenance event', async () => {
    const { library, calls, events } = setup();
    const result = await library.invoke(request);
    expect(result).toEqual({
      outputJson: '{"temp":21}',
      upstreamStatus: 200,
      inputSha256: sha('{"city":"Oslo"}'),
      outputSha256: sha('{"temp":21}'),
    });
    expect(calls).toEqual([{ url: 'https://weather.example/run', body: '{"city":"Oslo"}' }]);
    expect(events).toEqual([
      expect.objectContaining({
        tenantId: tenantA,
        kind: 'tool.call',
        principal,
        assistantId: assistant,
        object: 'tools',
        action: 'invoke',
        outcome: Outcome.SUCCESS,
        attributes: { tool: 'weather', input_sha256: result.inputSha256, output_sha256: result.outputSha256, upstream_status: '200' },
      }),
    ]);
  });

  it('returns a non-2xx JSON answer but records it as a FAILURE', async () => {
    const { library, events } = setup({ answer: async () => ({ status: 503, body: '{"error":"busy"}' }) });
    await expect(library.invoke(request)).resolves.toMatchObject({ upstreamStatus: 503, outputJson: '{"error":"busy"}' });
    expect(events[0]).toMatchObject({ outcome: Outcome.FAILURE, reason: 'upstream status 503' });
  });

  it('answers NOT_FOUND for an unknown tool, or one of another tenant, and audits the attempt', async () => {
    const { library, calls, events } = setup();
    await expect(library.invoke({ ...request, toolName: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const foreign = create(PrincipalSchema, { ...principal, tenantId: tenantB });
    await expect(library.invoke({ ...request, tenantId: tenantB, principal: foreign })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(calls).toHaveLength(0);
    expect(events.map((e) => [e.tenantId, e.outcome, e.attributes])).toEqual([
      [tenantA, Outcome.FAILURE, { tool: 'nope', input_sha256: sha(request.inputJson), output_sha256: '', upstream_status: '' }],
      [tenantB, Outcome.FAILURE, expect.objectContaining({ tool: 'weather' })],
    ]);
  });

  it.each([
    ['not JSON', '{city:'],
    ['empty', ''],
    ['too large', JSON.stringify('x'.repeat(MAX_INPUT_BYTES))],
  ])('rejects %s input with INVALID_ARGUMENT before calling the tool', async (_, inputJson) => {
    const { library, calls, events } = setup();
    await expect(library.invoke({ ...request, inputJson })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(calls).toHaveLength(0);
    expect(events[0]).toMatchObject({ outcome: Outcome.FAILURE, reason: expect.stringContaining('INVALID_ARGUMENT') });
  });

  it('accepts input of exactly 64 KiB', async () => {
    const { library } = setup();
    const inputJson = JSON.stringify('x'.repeat(MAX_INPUT_BYTES - 2));
    await expect(library.invoke({ ...request, inputJson })).resolves.toMatchObject({ upstreamStatus: 200 });
  });

  it('requires a principal of the same tenant', async () => {
    const { library, calls } = setup();
    await expect(library.invoke({ ...request, principal: undefined })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const foreign = create(PrincipalSchema, { ...principal, tenantId: tenantB });
    await expect(library.invoke({ ...request, principal: foreign })).rejects.toMatchObject({ code: 'CROSS_TENANT' });
    expect(calls).toHaveLength(0);
  });

  it('re-checks the target at invocation: a name that now resolves privately is refused', async () => {
    const { library, calls, events } = setup({ resolve: async () => ['93.184.216.34', '127.0.0.1'] });
    await expect(library.invoke(request)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(calls).toHaveLength(0);
    expect(events[0]).toMatchObject({ outcome: Outcome.FAILURE });
    const gone = setup({ resolve: () => Promise.reject(new Error('ENOTFOUND')) });
    await expect(gone.library.invoke(request)).rejects.toMatchObject({ code: 'UPSTREAM_FAILED' });
  });

  it('keeps upstream failures as they are and records the upstream status it saw', async () => {
    const { library, events } = setup({
      answer: () => Promise.reject(new AppError('UPSTREAM_FAILED', 'tool response exceeds 10 bytes', { details: { upstreamStatus: 200 } })),
    });
    await expect(library.invoke(request)).rejects.toMatchObject({ code: 'UPSTREAM_FAILED' });
    expect(events[0]).toMatchObject({
      outcome: Outcome.FAILURE,
      attributes: expect.objectContaining({ upstream_status: '200', output_sha256: '' }),
    });
  });

  it('fails the call with DEPENDENCY_UNAVAILABLE when the audit event cannot be stored', async () => {
    const { library } = setup({ auditFails: true });
    await expect(library.invoke(request)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    await expect(library.invoke({ ...request, toolName: 'nope' })).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });

  it('rejects malformed tenant or assistant ids without auditing', async () => {
    const { library, events } = setup();
    await expect(library.invoke({ ...request, tenantId: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(library.invoke({ ...request, assistantId: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(events).toHaveLength(0);
  });
});
