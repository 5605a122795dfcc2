import { PrismaPg } from '@prisma/adapter-pg';
import {
  connectNats,
  counterOn,
  histogramOn,
  createGrpcClient,
  createTenantScope,
  loadConfig,
  metricNames,
  runService,
  startPeriodicTask,
} from '@portcullis/kit';
import { AuthService } from '@portcullis/proto/auth';
import { configSchema } from './config.js';
import { startAuditConsumer, watchConnection } from './events/audit-consumer.js';
import { startRobotEventConsumer } from './events/robot-consumer.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createAuditService } from './grpc/audit-service.js';
import { countStoredEvents, createEventIngest } from './libraries/event-ingest.js';
import { rejectReasons } from './libraries/event-validation.js';
import { createEventLog } from './libraries/event-log.js';
import { createCheckpointer, createCheckpointKeyring } from './libraries/checkpoints.js';
import { createChainVerifier } from './libraries/hash-chain.js';
import { createRobotEvents, robotRejectReasons } from './libraries/robot-events.js';
import { checkpointTables, createAuditReadQueries } from './queries/audit-read.js';
import { appendOnlyTables, createAuditEventQueries, undeletableTables } from './queries/audit-events.js';

const config = loadConfig(configSchema, process.env);

await runService({
  name: 'audit',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  appendOnlyTables: [...appendOnlyTables, ...checkpointTables],
  undeletableTables,
  async start({ logger, lifecycle, identity, metrics }) {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'audit', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    const connection = watchConnection(nc);

    const events = createAuditEventQueries(createTenantScope(prisma));
    const stored = countStoredEvents({
      stored: counterOn(metrics, { name: metricNames.auditEventsStored, help: 'Audit events stored (each event id once)' }),
      lag: histogramOn(metrics, {
        name: metricNames.auditIngestLag,
        help: 'Seconds from an event occurring to its being stored',
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      }),
    });
    const rejected = counterOn(metrics, {
      name: metricNames.auditEventsRejected,
      help: 'Audit events or batches refused (not stored), by reason',
      labelNames: ['reason'],
    });
    for (const reason of rejectReasons) rejected.inc({ reason }, 0);
    const ingest = createEventIngest({
      store: async (record) => stored.one(record, await events.insert(record)),
      storeMany: async (tenantId, records) => stored.many(records, await events.insertMany(tenantId, records)),
      rejected,
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

    // Robot events: auth verifies the token of every message before it joins its tenant's trail.
    const auth = createGrpcClient(AuthService, {
      address: config.AUTH_ADDRESS,
      deadlineMs: config.GRPC_DEADLINE_MS,
      credential: identity.credentialFor('auth'),
      metrics,
    });
    lifecycle.onShutdown('auth-client', () => auth.close());
    const rejectedRobotEvents = counterOn(metrics, {
      name: metricNames.robotEventsRejected,
      help: 'Robot events refused (not stored), by reason',
      labelNames: ['reason'],
    });
    for (const reason of robotRejectReasons) rejectedRobotEvents.inc({ reason }, 0);
    const robotConsumer = await startRobotEventConsumer({
      nc,
      subjectPrefix: config.NATS_SUBJECT_PREFIX,
      durable: config.ROBOT_EVENTS_CONSUMER_NAME,
      events: createRobotEvents({
        subjectPrefix: config.NATS_SUBJECT_PREFIX,
        verifyRobotToken: (token) => auth.verifyRobotToken({ token }),
        store: events.insert,
        rejected: rejectedRobotEvents,
        stored: counterOn(metrics, { name: metricNames.robotEventsStored, help: "Robot events stored in their tenant's audit trail" }),
        logger,
      }),
      logger,
    });
    lifecycle.onShutdown('robot-event-consumer', () => robotConsumer.stop());

    const reads = createAuditReadQueries(createTenantScope(prisma), prisma);
    const keyring = await createCheckpointKeyring({
      signingKey: config.AUDIT_CHECKPOINT_KEY,
      previousKeys: config.AUDIT_CHECKPOINT_PREVIOUS_KEYS,
    });
    const checkpointRound = createCheckpointer({ ...reads, chainHead: events.chainHead, keyring, logger });
    startPeriodicTask({
      name: 'audit-checkpoints',
      everyMs: config.AUDIT_CHECKPOINT_INTERVAL_MS,
      run: async () => {
        await checkpointRound();
      },
      logger,
      lifecycle,
    });
    const log = createEventLog({ ...reads, checkpointKeys: () => keyring.publicKeys() });
    const verifyChain = createChainVerifier(events, { listCheckpoints: reads.listCheckpoints, verify: keyring.verify });

    return {
      services: [createAuditService({ log, verifyChain })],
      isReady: () => connection.isConnected() && consumer.isRunning() && robotConsumer.isRunning(),
    };
  },
});
