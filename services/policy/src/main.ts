import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { connectNats, createTenantScope, loadConfig, runService } from '@portcullis/kit';
import { configSchema } from './config.js';
import { createPolicyChangeChannel } from './events/policy-changes.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createPolicyService } from './grpc/policy-service.js';
import { createDecisionLibrary } from './libraries/decisions.js';
import { parseRoleTemplates } from './libraries/role-templates.js';
import { createRoleAssignmentQueries } from './queries/role-assignments.js';

const config = loadConfig(configSchema, process.env);

await runService({
  name: 'policy',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  async start({ logger, lifecycle }) {
    const [modelText, rolesCsv] = await Promise.all([
      readFile(join(config.POLICY_DIR, 'model.conf'), 'utf8'),
      readFile(join(config.POLICY_DIR, 'roles.csv'), 'utf8'),
    ]);
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'policy', logger });
    lifecycle.onShutdown('nats', () => nc.drain());

    const assignments = createRoleAssignmentQueries(createTenantScope(prisma));
    const decisions = createDecisionLibrary({
      modelText,
      templates: parseRoleTemplates(rolesCsv),
      assignments,
      maxCachedTenants: config.POLICY_MAX_CACHED_TENANTS,
      maxAgeMs: config.POLICY_CACHE_MAX_AGE_MS,
    });
    const changes = createPolicyChangeChannel({ nc, subjectPrefix: config.NATS_SUBJECT_PREFIX, logger });
    lifecycle.onShutdown(
      'policy-change-subscription',
      changes.subscribe((tenantId) => decisions.invalidate(tenantId)),
    );

    return {
      services: [createPolicyService({ decisions, assignments, announceChange: changes.publish })],
      isReady: () => !nc.isClosed(),
    };
  },
});
