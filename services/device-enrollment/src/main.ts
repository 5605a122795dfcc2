import { PrismaPg } from '@prisma/adapter-pg';
import {
  auditSpoolDirOf,
  connectNats,
  createAuditPublisher,
  createBackgroundAuditPublisher,
  createTenantScope,
  loadConfig,
  openAuditSpool,
  runService,
} from '@portcullis/kit';
import { configSchema } from './config.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createDeviceEnrollmentService } from './grpc/device-enrollment-service.js';
import { createActivationCodeHasher } from './libraries/activation-codes.js';
import { createEnrollmentLibrary } from './libraries/enrollment.js';
import { createEnrollmentQueries } from './queries/enrollment.js';

const config = loadConfig(configSchema, process.env);
/** Binding records in memory (neither acknowledged nor spooled), at most; beyond it binds fail with 503. */
const auditMaxPending = 1_000;

await runService({
  name: 'device-enrollment',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  async start({ logger, lifecycle }) {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'device-enrollment', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    const durableAudit = createAuditPublisher({ nc, subjectPrefix: config.NATS_SUBJECT_PREFIX });
    await durableAudit.ensureStream();
    // A binding commits only once its record is acknowledged by JetStream or fsynced to the local
    // spool (replayed in order when JetStream is back, also after a restart); with the spool full
    // and `auditMaxPending` records in memory, binds fail with 503. Drained at shutdown
    // (registered after NATS, so it runs before NATS is drained).
    const audit = createBackgroundAuditPublisher({
      publisher: durableAudit,
      confirm: 'stored',
      confirmTimeoutMs: config.GRPC_DEADLINE_MS,
      maxPending: auditMaxPending,
      logger,
      spool: await openAuditSpool({
        dir: auditSpoolDirOf(config, 'device-enrollment'),
        maxBytes: config.AUDIT_SPOOL_MAX_BYTES,
        maxEvents: config.AUDIT_SPOOL_MAX_EVENTS,
        logger,
      }),
    });
    lifecycle.onShutdown('audit events', async () => {
      await audit.drain(config.SHUTDOWN_BUDGET_MS / 2);
    });

    const enrollment = createEnrollmentLibrary({
      store: createEnrollmentQueries(createTenantScope(prisma)),
      audit,
      hashCode: createActivationCodeHasher(config.ACTIVATION_CODE_SECRET),
      ttlSeconds: config.ACTIVATION_CODE_TTL_SECONDS,
      maxFailedBinds: config.ACTIVATION_MAX_FAILED_BINDS,
      failedBindWindowSeconds: config.ACTIVATION_FAILED_BIND_WINDOW_SECONDS,
    });

    return {
      services: [createDeviceEnrollmentService({ enrollment })],
      isReady: () => !nc.isClosed(),
    };
  },
});
