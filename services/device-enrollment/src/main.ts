import { PrismaPg } from '@prisma/adapter-pg';
import { connectNats, createTenantScope, loadConfig, startStoredAuditPublisher, runService } from '@portcullis/kit';
import { configSchema } from './config.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createDeviceEnrollmentService } from './grpc/device-enrollment-service.js';
import { createActivationCodeHasher } from './libraries/activation-codes.js';
import { createEnrollmentLibrary } from './libraries/enrollment.js';
import { createEnrollmentQueries } from './queries/enrollment.js';

const config = loadConfig(configSchema, process.env);
/** Binding records in memory (neither acknowledged nor spooled), at most; beyond it binds fail with 503. */

await runService({
  name: 'device-enrollment',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  async start({ logger, lifecycle }) {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'device-enrollment', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    // A binding commits only once its record is stored (JetStream or the local spool); see
    // startStoredAuditPublisher. With the spool full and 1,000 records in memory, binds fail with 503.
    const audit = await startStoredAuditPublisher({ nc, config, service: 'device-enrollment', logger, lifecycle });

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
