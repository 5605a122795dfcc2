import { PrismaPg } from '@prisma/adapter-pg';
import { connectNats, createTenantScope, loadConfig, startStoredAuditPublisher, runService } from '@portcullis/kit';
import { configSchema } from './config.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createToolGatewayService } from './grpc/tool-gateway-service.js';
import { createHttpToolClient } from './libraries/http-tool-client.js';
import { createInvocationLibrary } from './libraries/invocations.js';
import { createTargetGuard, formatAllowedTarget, systemResolver } from './libraries/target-guard.js';
import { createToolRegistry } from './libraries/tool-registry.js';
import { createToolQueries } from './queries/tools.js';

const config = loadConfig(configSchema, process.env);
/** Tool call records in memory (neither acknowledged nor spooled), at most; beyond it calls fail with 503. */

await runService({
  name: 'tool-gateway',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  async start({ logger, lifecycle }) {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'tool-gateway', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    // A call's result is returned only once its record is stored (JetStream or the local spool); see
    // startStoredAuditPublisher. With the spool full and 1,000 records in memory, calls fail with 503.
    const audit = await startStoredAuditPublisher({ nc, config, service: 'tool-gateway', logger, lifecycle });

    if (config.TOOL_ALLOWED_PRIVATE_TARGETS.length > 0) {
      const targets = config.TOOL_ALLOWED_PRIVATE_TARGETS.map(formatAllowedTarget);
      logger.warn(
        { allowedPrivateTargets: targets },
        `TOOL_ALLOWED_PRIVATE_TARGETS is set: tools may reach these private targets: ${targets.join(', ')}`,
      );
    }
    const tools = createToolQueries(createTenantScope(prisma));
    const guard = createTargetGuard({ allowedPrivateTargets: config.TOOL_ALLOWED_PRIVATE_TARGETS, resolve: systemResolver });
    const http = createHttpToolClient({ fetch, timeoutMs: config.TOOL_TIMEOUT_MS, maxResponseBytes: config.TOOL_MAX_RESPONSE_BYTES });

    return {
      services: [
        createToolGatewayService({
          registry: createToolRegistry({ store: tools, guard }),
          invocations: createInvocationLibrary({ tools, guard, http, audit }),
        }),
      ],
      isReady: () => !nc.isClosed(),
    };
  },
});
