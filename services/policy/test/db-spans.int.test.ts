import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { PrismaPg } from '@prisma/adapter-pg';
import { createTenantScope, spanAttributes, startTelemetry, tracer, type Telemetry } from '@portcullis/kit';
import { createTestDatabase, type TestDatabase } from '@portcullis/test';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createTenantRuleQueries } from '../src/queries/tenant-rules.js';

// The services' database spans come from Prisma itself (@prisma/instrumentation, installed by
// startTelemetry) through @prisma/adapter-pg, as the services are wired: this proves they are
// produced, linked to the caller's trace, and name the tenant scope's tenant.
describe('database spans', () => {
  const exporter = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let db: TestDatabase;
  let prisma: PrismaClient;

  beforeAll(async () => {
    // Imported (and the client built) before telemetry starts, as in a service's main.ts.
    telemetry = startTelemetry({ serviceName: 'policy-test', spanProcessors: [new SimpleSpanProcessor(exporter)] });
    db = await createTestDatabase('policy', new URL('../prisma/migrations', import.meta.url).pathname);
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
  });

  afterAll(async () => {
    await prisma.$disconnect();
    await db.drop();
    await telemetry.shutdown();
  });

  /** Runs `fn` inside a parent span and returns the spans of its trace, the parent first. */
  async function traced(fn: () => Promise<unknown>): Promise<{ root: ReadableSpan; spans: ReadableSpan[] }> {
    exporter.reset();
    const traceId = await tracer.startActiveSpan('request', async (span) => {
      await fn();
      span.end();
      return span.spanContext().traceId;
    });
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const root = spans.find((s) => s.name === 'request');
    if (!root) throw new Error('the parent span was not recorded');
    return { root, spans };
  }

  /** Whether `span`'s chain of parents reaches `root`. */
  function descendsFrom(span: ReadableSpan, root: ReadableSpan, spans: readonly ReadableSpan[]): boolean {
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    for (let parent = span.parentSpanContext?.spanId; parent !== undefined; parent = byId.get(parent)?.parentSpanContext?.spanId) {
      if (parent === root.spanContext().spanId) return true;
    }
    return false;
  }

  it('gives every statement of a tenant scope a span naming the tenant and the statement kind, never a value', async () => {
    const rules = createTenantRuleQueries(createTenantScope(prisma));
    const tenantId = randomUUID();
    const subject = `user:${randomUUID()}`;
    const { root, spans } = await traced(async () => {
      await rules.change(tenantId, (changes) => changes.assignRole(subject, 'role:admin', null));
      await rules.loadTenant(tenantId);
    });

    const statements = spans.filter((s) => s.name === 'prisma:client:db_query');
    const texts = statements.map((s) => String(s.attributes['db.query.text']));
    // Two scopes: each sets the tenant; the change takes its lock and inserts, the load reads three tables.
    expect(texts.filter((t) => t.includes(`set_config('app.tenant_id', $1, true)`))).toHaveLength(2);
    expect(texts.filter((t) => t.includes('pg_advisory_xact_lock'))).toHaveLength(1);
    expect(statements.map((s) => s.attributes['db.operation.name'])).toEqual(expect.arrayContaining(['SELECT', 'INSERT']));
    expect(statements.length).toBeGreaterThanOrEqual(7);
    for (const statement of statements) {
      expect(statement.attributes).toMatchObject({ 'db.system.name': 'postgresql', [spanAttributes.tenantId]: tenantId });
      expect(descendsFrom(statement, root, spans)).toBe(true);
      // Values travel as parameters, never in the statement text.
      expect(statement.attributes['db.query.text']).not.toContain(tenantId);
      expect(statement.attributes['db.query.text']).not.toContain(subject);
    }
    // The transaction spans of both scopes name the tenant too.
    const transactions = spans.filter((s) => s.name === 'prisma:client:transaction');
    expect(transactions).toHaveLength(2);
    for (const transaction of transactions) expect(transaction.attributes[spanAttributes.tenantId]).toBe(tenantId);
  });

  it('spans a statement outside any tenant scope without naming a tenant', async () => {
    const { root, spans } = await traced(() => prisma.$queryRaw`SELECT count(*) FROM role_assignments`);
    const [statement, ...more] = spans.filter((s) => s.name === 'prisma:client:db_query');
    expect(more).toEqual([]);
    expect(statement?.attributes).toMatchObject({ 'db.system.name': 'postgresql', 'db.operation.name': 'SELECT' });
    expect(statement?.attributes[spanAttributes.tenantId]).toBeUndefined();
    expect(statement && descendsFrom(statement, root, spans)).toBe(true);
  });
});
