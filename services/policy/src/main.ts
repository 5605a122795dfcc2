import { PrismaPg } from '@prisma/adapter-pg';
import {
  auditSpoolDirOf,
  connectNats,
  Counter,
  createAuditPublisher,
  createBackgroundAuditPublisher,
  createChangeAuditPublisher,
  createTenantScope,
  loadConfig,
  metricNames,
  openAuditSpool,
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
const auditMaxPending = 1_000;

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
    const durableAudit = createAuditPublisher({ nc, subjectPrefix: config.NATS_SUBJECT_PREFIX });
    await durableAudit.ensureStream();
    // Assistant roles and permissions are published once stored; a publish waits until JetStream
    // acknowledged the event or the local spool holds it (replayed in order when JetStream is
    // back, also after a restart). One that does neither is logged with the event and answered
    // DEPENDENCY_UNAVAILABLE (README: "Audit events"). Drained at shutdown (registered after
    // NATS, so it runs before NATS is drained).
    const backgroundAudit = createBackgroundAuditPublisher({
      publisher: durableAudit,
      confirm: 'stored',
      confirmTimeoutMs: config.GRPC_DEADLINE_MS,
      maxPending: auditMaxPending,
      logger,
      spool: await openAuditSpool({
        dir: auditSpoolDirOf(config, 'policy'),
        maxBytes: config.AUDIT_SPOOL_MAX_BYTES,
        maxEvents: config.AUDIT_SPOOL_MAX_EVENTS,
        logger,
      }),
    });
    lifecycle.onShutdown('audit events', async () => {
      await backgroundAudit.drain(config.SHUTDOWN_BUDGET_MS / 2);
    });

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
