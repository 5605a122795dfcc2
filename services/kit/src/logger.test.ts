import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLogger } from './logger.js';
import { startTelemetry, tracer, type Telemetry } from './telemetry/telemetry.js';

// A tracer provider (no exporter) gives spans real ids and keeps the active span across awaits.
let telemetry: Telemetry;
beforeAll(() => {
  telemetry = startTelemetry({ serviceName: 'logger-test' });
});
afterAll(() => telemetry.shutdown());

function setup() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    name: 'logger-test',
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { lines, logger };
}

describe('createLogger', () => {
  it("stamps a line logged inside a span with that span's trace and span ids", async () => {
    const { lines, logger } = setup();
    const ids = await tracer.startActiveSpan('work', async (span) => {
      await Promise.resolve();
      logger.info('inside');
      span.end();
      return span.spanContext();
    });
    expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(lines[0]).toMatchObject({ msg: 'inside', name: 'logger-test', trace_id: ids.traceId, span_id: ids.spanId });
  });

  it('writes no trace fields outside any span', () => {
    const { lines, logger } = setup();
    logger.info('outside');
    expect(lines[0]).toMatchObject({ msg: 'outside' });
    expect(lines[0]).not.toHaveProperty('trace_id');
    expect(lines[0]).not.toHaveProperty('span_id');
  });

  it('redacts credentials wherever a caller passes them', () => {
    const { lines, logger } = setup();
    logger.info({ token: 't0ps3cret', headers: { authorization: 'Bearer abc', cookie: 'sid=1' }, user: { password: 'pw' } }, 'sign-in');
    const line = JSON.stringify(lines[0]);
    for (const secret of ['t0ps3cret', 'Bearer abc', 'sid=1', '"pw"']) expect(line).not.toContain(secret);
    expect(lines[0]).toMatchObject({ token: '[redacted]', headers: { authorization: '[redacted]', cookie: '[redacted]' } });
  });
});
