import { AppError, injectContext, traceClientCall } from '@portcullis/kit';

/** The slice of the WHATWG `fetch` this client uses; the global `fetch` fits it. */
export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export interface UpstreamResponse {
  status: number;
  /** The response body exactly as received: UTF-8 text that parses as JSON. */
  body: string;
}

export interface HttpToolClientDeps {
  fetch: Fetch;
  /** Budget for one call, from connecting through reading the last body byte. */
  timeoutMs: number;
  maxResponseBytes: number;
  /** Writes the active W3C trace context into the outgoing headers. */
  injectTraceHeaders?: (headers: Record<string, string>) => void;
}

function injectActiveTraceContext(headers: Record<string, string>): void {
  injectContext(headers, {
    set(carrier, key, value) {
      carrier[key] = value;
    },
  });
}

function tooLarge(limit: number, upstreamStatus: number): AppError {
  return new AppError('UPSTREAM_FAILED', `tool response exceeds ${limit} bytes`, { details: { limit, upstreamStatus } });
}

/** Reads at most `limit` bytes of a body, cancelling the stream as soon as it runs over. */
async function readCapped(response: Response, limit: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(limit, response.status);
  }
  if (!response.body) return new Uint8Array();
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(limit, response.status);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function decodeJson(bytes: Uint8Array, upstreamStatus: number): string {
  const notJson = () => new AppError('UPSTREAM_FAILED', 'tool response is not a JSON document', { details: { upstreamStatus } });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw notJson();
  }
  try {
    JSON.parse(text);
  } catch {
    throw notJson();
  }
  return text;
}

/**
 * Calls an upstream HTTP tool: POSTs a JSON body with the trace context in the headers,
 * bounded in time and in response size, and insists on a JSON answer. Redirects are not
 * followed, so a tool can never bounce the gateway to a target the SSRF guard did not see.
 */
export function createHttpToolClient({
  fetch,
  timeoutMs,
  maxResponseBytes,
  injectTraceHeaders = injectActiveTraceContext,
}: HttpToolClientDeps) {
  return {
    /** One upstream call, inside a CLIENT span whose context the tool receives. */
    post(url: URL, body: string, deadline?: Date): Promise<UpstreamResponse> {
      return traceClientCall(`POST ${url.host}`, { 'http.request.method': 'POST', 'server.address': url.hostname }, () =>
        postJson(url, body, deadline),
      );
    },
  };

  async function postJson(url: URL, body: string, deadline?: Date): Promise<UpstreamResponse> {
    const budgetMs = Math.max(1, Math.min(timeoutMs, deadline ? deadline.getTime() - Date.now() : timeoutMs));
    const signal = AbortSignal.timeout(budgetMs);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    injectTraceHeaders(headers);
    try {
      const response = await fetch(url.toString(), { method: 'POST', headers, body, signal, redirect: 'manual' });
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel().catch(() => undefined);
        throw new AppError('UPSTREAM_FAILED', 'tool endpoint answered with a redirect, which is not followed', {
          details: { upstreamStatus: response.status },
        });
      }
      const bytes = await readCapped(response, maxResponseBytes);
      return { status: response.status, body: decodeJson(bytes, response.status) };
    } catch (error) {
      if (error instanceof AppError) throw error;
      // The signal is a pure timeout: once it fired, whatever failed failed because time ran out.
      if (signal.aborted) {
        throw new AppError('DEADLINE_EXCEEDED', `tool did not answer within ${budgetMs} ms`, { cause: error });
      }
      throw new AppError('UPSTREAM_FAILED', 'tool endpoint could not be reached', { cause: error });
    }
  }
}

export type HttpToolClient = ReturnType<typeof createHttpToolClient>;
