import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import { createLogger, startTelemetry, type Telemetry } from '@portcullis/kit';
import { errorHandler, requestContext } from './middleware.js';

// A tracer provider (no exporter), as every process has one: spans get real ids.
let telemetry: Telemetry;
beforeAll(() => {
  telemetry = startTelemetry({ serviceName: 'middleware-test' });
});
afterAll(() => telemetry.shutdown());

describe('request log lines', () => {
  it("carry the request's trace id: the traceparent the caller sent, continued by the request span", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      name: 'api-gateway',
      level: 'info',
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    const app = express();
    app.use(requestContext());
    app.get('/boom', async () => {
      await Promise.resolve();
      throw new Error('database exploded');
    });
    app.use(errorHandler(logger));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/boom`, {
        headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      });
      expect(response.status).toBe(500);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request failed', code: 'INTERNAL', trace_id: traceId });
    expect(lines[0]?.['span_id']).toMatch(/^[0-9a-f]{16}$/);
    expect(lines[0]?.['span_id']).not.toBe('00f067aa0ba902b7');
  });
});
