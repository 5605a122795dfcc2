import { describe, expect, it } from '@jest/globals';
import { createHttpToolClient, type Fetch } from './http-tool-client.js';

interface Sent {
  url: string;
  init: RequestInit;
}

function fakeFetch(answer: (sent: Sent) => Promise<Response> | Response) {
  const sent: Sent[] = [];
  const fetch: Fetch = async (url, init) => {
    sent.push({ url, init });
    return answer({ url, init });
  };
  return { sent, fetch };
}

const url = new URL('https://tool.example/run');
const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const base = { timeoutMs: 1000, maxResponseBytes: 64, injectTraceHeaders: (h: Record<string, string>) => (h['traceparent'] = traceparent) };

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

describe('http tool client', () => {
  it('POSTs the JSON body with content type, trace context and a timeout signal, and returns the JSON answer', async () => {
    const { sent, fetch } = fakeFetch(() => new Response('{"ok":true}', { status: 200 }));
    const client = createHttpToolClient({ ...base, fetch });
    expect(await client.post(url, '{"q":1}')).toEqual({ status: 200, body: '{"ok":true}' });
    expect(sent).toHaveLength(1);
    const { init } = sent[0]!;
    expect(sent[0]!.url).toBe('https://tool.example/run');
    expect(init.method).toBe('POST');
    expect(init.body).toBe('{"q":1}');
    expect(init.redirect).toBe('manual');
    expect(init.signal).toBeInstanceOf(AbortSignal);
    expect(init.headers).toMatchObject({ 'content-type': 'application/json', traceparent });
  });

  it('returns a non-2xx JSON answer with its status', async () => {
    const { fetch } = fakeFetch(() => new Response('{"error":"bad"}', { status: 422 }));
    expect(await createHttpToolClient({ ...base, fetch }).post(url, '{}')).toEqual({ status: 422, body: '{"error":"bad"}' });
  });

  it('refuses a body larger than the limit, declared or streamed', async () => {
    const declared = fakeFetch(() => new Response('x'.repeat(65), { status: 200, headers: { 'content-length': '65' } }));
    await expect(createHttpToolClient({ ...base, fetch: declared.fetch }).post(url, '{}')).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
      message: 'tool response exceeds 64 bytes',
      details: { upstreamStatus: 200 },
    });
    const streamed = fakeFetch(() => new Response(streamOf(['[' + '1,'.repeat(20), '1,'.repeat(20) + '1]']), { status: 200 }));
    await expect(createHttpToolClient({ ...base, fetch: streamed.fetch }).post(url, '{}')).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
      message: 'tool response exceeds 64 bytes',
    });
  });

  it('accepts a body of exactly the limit', async () => {
    const body = JSON.stringify('x'.repeat(62));
    const { fetch } = fakeFetch(() => new Response(streamOf([body.slice(0, 10), body.slice(10)]), { status: 200 }));
    expect((await createHttpToolClient({ ...base, fetch }).post(url, '{}')).body).toBe(body);
  });

  it.each([['plain text'], [''], ['{"half":']])('refuses a non-JSON body %j', async (text) => {
    const { fetch } = fakeFetch(() => new Response(text, { status: 200 }));
    await expect(createHttpToolClient({ ...base, fetch }).post(url, '{}')).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
      message: 'tool response is not a JSON document',
    });
  });

  it('refuses a body that is not UTF-8', async () => {
    const { fetch } = fakeFetch(() => new Response(new Uint8Array([0x22, 0xff, 0xfe, 0x22]), { status: 200 }));
    await expect(createHttpToolClient({ ...base, fetch }).post(url, '{}')).rejects.toMatchObject({ code: 'UPSTREAM_FAILED' });
  });

  it('does not follow redirects', async () => {
    const { fetch } = fakeFetch(() => new Response(null, { status: 302, headers: { location: 'http://169.254.169.254/' } }));
    await expect(createHttpToolClient({ ...base, fetch }).post(url, '{}')).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
      message: expect.stringContaining('redirect'),
    });
  });

  it('turns a timeout into DEADLINE_EXCEEDED', async () => {
    const { fetch } = fakeFetch(
      ({ init }) =>
        new Promise<Response>((_, reject) => {
          const signal = init.signal!;
          signal.addEventListener('abort', () => reject(signal.reason as Error));
        }),
    );
    await expect(createHttpToolClient({ ...base, timeoutMs: 5, fetch }).post(url, '{}')).rejects.toMatchObject({
      code: 'DEADLINE_EXCEEDED',
    });
  });

  it("never waits past the caller's deadline", async () => {
    const { fetch } = fakeFetch(
      ({ init }) =>
        new Promise<Response>((_, reject) => {
          const signal = init.signal!;
          signal.addEventListener('abort', () => reject(signal.reason as Error));
        }),
    );
    const client = createHttpToolClient({ ...base, timeoutMs: 3_600_000, fetch });
    await expect(client.post(url, '{}', new Date(Date.now() - 1))).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('turns a connection failure into UPSTREAM_FAILED', async () => {
    const { fetch } = fakeFetch(() => Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') })));
    await expect(createHttpToolClient({ ...base, fetch }).post(url, '{}')).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
      message: 'tool endpoint could not be reached',
    });
  });
});
