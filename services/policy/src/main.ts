import { PrismaPg } from '@prisma/adapter-pg';
import {
  connectNats,
  Counter,
  createChangeAuditPublisher,
  createTenantScope,
  loadConfig,
  metricNames,
  startStoredAuditPublisher,
  runService,
} from '@portcullis/kit';
import { configSchema } from './config.js';
import { createPolicyChangeChannel } from './events/policy-changes.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createPolicyService } from './grpc/policy-service.js';
import { createDecisionLibrary } from './libraries/decisions.js';
import { createGrantLibrary } from './libraries/grants.js';
import { readPolicyFiles } from './libraries/policy-files.js';
import { createTenantRuleQueries } from './queries/tenant-rules.js';

const config = loadConfig(configSchema, process.env);
/** Audit events in memory (neither acknowledged nor spooled), at most; beyond it the changes they record answer 503. */

await runService({
  name: 'policy',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  async start({ logger, lifecycle, metrics }) {
    // Refuses to start on inconsistent policy files or an unknown default plan.
    const { modelText, catalogue } = await readPolicyFiles(config.POLICY_DIR);
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'policy', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    // Assistant roles and permissions are published once stored; one that is neither acknowledged
    // nor spooled is logged and answered DEPENDENCY_UNAVAILABLE (README: "Audit events").
    const backgroundAudit = await startStoredAuditPublisher({ nc, config, service: 'policy', logger, lifecycle });

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
      audit: createChangeAuditPublisher({ publisher: backgroundAudit, logger }),
    });

    const decisionsCounted = new Counter({
      name: metricNames.policyDecisions,
      help: 'Decisions answered by Check and BatchCheck (one per query), by outcome and RPC',
      labelNames: ['outcome', 'rpc'] as const,
      registers: [metrics],
    });

    return {
      services: [createPolicyService({ decisions, grants, decisionsCounted })],
      isReady: () => !nc.isClosed(),
    };
  },
});
