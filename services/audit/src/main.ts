import { PrismaPg } from '@prisma/adapter-pg';
import { connectNats, createTenantScope, loadConfig, runService } from '@portcullis/kit';
import { configSchema } from './config.js';
import { startAuditConsumer, watchConnection } from './events/audit-consumer.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createAuditService } from './grpc/audit-service.js';
import { createEventIngest } from './libraries/event-ingest.js';
import { createEventLog } from './libraries/event-log.js';
import { createChainVerifier } from './libraries/hash-chain.js';
import { appendOnlyTables, createAuditEventQueries, undeletableTables } from './queries/audit-events.js';

const config = loadConfig(configSchema, process.env);

await runService({
  name: 'audit',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  appendOnlyTables,
  undeletableTables,
  async start({ logger, lifecycle }) {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'audit', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    const connection = watchConnection(nc);

    const events = createAuditEventQueries(createTenantScope(prisma));
    const ingest = createEventIngest({
      store: events.insert,
      storeMany: events.insertMany,
      logger,
      subjectPrefix: config.NATS_SUBJECT_PREFIX,
    });
    const consumer = await startAuditConsumer({
      nc,
      subjectPrefix: config.NATS_SUBJECT_PREFIX,
      durable: config.AUDIT_CONSUMER_NAME,
      ingest,
      logger,
    });
    lifecycle.onShutdown('audit-consumer', () => consumer.stop());

    return {
      services: [createAuditService({ log: createEventLog({ listPage: events.listPage }), verifyChain: createChainVerifier(events) })],
      isReady: () => connection.isConnected() && consumer.isRunning(),
    };
  },
});
