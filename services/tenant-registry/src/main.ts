import { Resolver } from 'node:dns/promises';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  connectNats,
  createChangeAuditPublisher,
  createGrpcClient,
  createTenantScope,
  loadConfig,
  startStoredAuditPublisher,
  runService,
} from '@portcullis/kit';
import { PolicyService } from '@portcullis/proto/policy';
import { configSchema } from './config.js';
import { createTenantChangePublisher } from './events/tenant-changes.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createTenantRegistryService } from './grpc/tenant-registry-service.js';
import { createChatGroupLibrary } from './libraries/chat-groups.js';
import { createContextResolver } from './libraries/context-resolution.js';
import { createMembershipLibrary } from './libraries/memberships.js';
import { createTeamLibrary } from './libraries/teams.js';
import { createTenantLibrary } from './libraries/tenants.js';
import { createDomainOwnership } from './libraries/domain-ownership.js';
import { createChatGroupQueries } from './queries/chat-groups.js';
import { createLookupQueries } from './queries/lookups.js';
import { createMembershipQueries } from './queries/memberships.js';
import { createTeamQueries } from './queries/teams.js';
import { createTenantQueries } from './queries/tenants.js';

const config = loadConfig(configSchema, process.env);
/** Audit events in memory (neither acknowledged nor spooled), at most; beyond it the changes they record answer 503. */

await runService({
  name: 'tenant-registry',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  async start({ logger, lifecycle, identity }) {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'tenant-registry', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    // Membership and team changes are published once stored; one that is neither acknowledged nor
    // spooled is logged and answered DEPENDENCY_UNAVAILABLE (README: "Audit events").
    const backgroundAudit = await startStoredAuditPublisher({ nc, config, service: 'tenant-registry', logger, lifecycle });
    const audit = createChangeAuditPublisher({ publisher: backgroundAudit, logger });
    const policy = createGrpcClient(PolicyService, {
      address: config.POLICY_ADDRESS,
      deadlineMs: config.GRPC_DEADLINE_MS,
      credential: identity.credentialFor('policy'),
    });
    lifecycle.onShutdown('policy-client', () => policy.close());

    const scope = createTenantScope(prisma);
    const lookups = createLookupQueries({ db: prisma, scope });
    const changes = createTenantChangePublisher({ nc, subjectPrefix: config.NATS_SUBJECT_PREFIX, logger });
    const resolver = new Resolver({ timeout: config.DOMAIN_VERIFICATION_DNS_TIMEOUT_MS, tries: 2 });
    if (config.DOMAIN_VERIFICATION_DNS_SERVERS.length > 0) resolver.setServers(config.DOMAIN_VERIFICATION_DNS_SERVERS);
    const ownership = createDomainOwnership({
      resolveTxt: (name) => resolver.resolveTxt(name),
      exemptSuffixes: config.DOMAIN_VERIFICATION_EXEMPT_SUFFIXES,
    });
    const tenants = createTenantLibrary({ store: createTenantQueries(scope), ownership, policy, announce: changes.publish, audit });
    const membershipStore = createMembershipQueries(scope);
    const memberships = createMembershipLibrary({ store: membershipStore, lookups, policy, announce: changes.publish, audit });
    const teams = createTeamLibrary({ store: createTeamQueries(scope), members: membershipStore, announce: changes.publish, audit });
    const chatGroups = createChatGroupLibrary({
      store: createChatGroupQueries(scope),
      members: membershipStore,
      announce: changes.publish,
    });
    const contexts = createContextResolver({ lookups });

    return {
      services: [createTenantRegistryService({ tenants, memberships, teams, chatGroups, contexts })],
      isReady: () => !nc.isClosed(),
    };
  },
});
