import { PrismaPg } from '@prisma/adapter-pg';
import { connectNats, createTenantScope, loadConfig, runService } from '@portcullis/kit';
import { configSchema } from './config.js';
import { createPolicyChangeChannel } from './events/policy-changes.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createPolicyService } from './grpc/policy-service.js';
import { createDecisionLibrary } from './libraries/decisions.js';
import { createGrantLibrary } from './libraries/grants.js';
import { readPolicyFiles } from './libraries/policy-files.js';
import { createTenantRuleQueries } from './queries/tenant-rules.js';

const config = loadConfig(configSchema, process.env);

await runService({
  name: 'policy',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  async start({ logger, lifecycle }) {
    // Refuses to start on inconsistent policy files or an unknown default plan.
    const { modelText, catalogue } = await readPolicyFiles(config.POLICY_DIR);
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'policy', logger });
    lifecycle.onShutdown('nats', () => nc.drain());

    const rules = createTenantRuleQueries(createTenantScope(prisma));
    const decisions = createDecisionLibrary({
      modelText,
      catalogue,
      rules,
      defaultPlan: config.POLICY_DEFAULT_PLAN,
      maxCachedTenants: config.POLICY_MAX_CACHED_TENANTS,
      maxAgeMs: config.POLICY_CACHE_MAX_AGE_MS,
    });
    const changes = createPolicyChangeChannel({ nc, subjectPrefix: config.NATS_SUBJECT_PREFIX, logger });
    lifecycle.onShutdown(
      'policy-change-subscription',
      changes.subscribe((tenantId) => decisions.invalidate(tenantId)),
    );
    const grants = createGrantLibrary({
      store: rules,
      catalogue,
      announceChange(tenantId) {
        // This replica at once; every replica (this one again) through NATS.
        decisions.invalidate(tenantId);
        changes.publish(tenantId);
      },
    });

    return {
      services: [createPolicyService({ decisions, grants })],
      isReady: () => !nc.isClosed(),
    };
  },
});
