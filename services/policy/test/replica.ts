import { PrismaPg } from '@prisma/adapter-pg';
import {
  connectNats,
  createAuditPublisher,
  createChangeAuditPublisher,
  createGrpcClient,
  createGrpcServer,
  createTrustedIdentities,
  createLogger,
  createTenantScope,
  type GrpcClient,
  type GrpcServer,
  type NatsConnection,
} from '@portcullis/kit';
import { PolicyService } from '@portcullis/proto/policy';
import { infra, testRunId, type TestDatabase } from '@portcullis/test';
import { createPolicyChangeChannel } from '../src/events/policy-changes.js';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createPolicyService } from '../src/grpc/policy-service.js';
import { createDecisionLibrary } from '../src/libraries/decisions.js';
import { createGrantLibrary } from '../src/libraries/grants.js';
import { readPolicyFiles } from '../src/libraries/policy-files.js';
import { createTenantRuleQueries } from '../src/queries/tenant-rules.js';

const identities = createTrustedIdentities();

const logger = createLogger({ name: 'policy-test', level: 'silent' });
export const policyDir = new URL('../../../policies/', import.meta.url);

export interface Replica {
  server: GrpcServer;
  client: GrpcClient<typeof PolicyService>;
  prisma: PrismaClient;
  nc: NatsConnection;
  close(): Promise<void>;
}

/** One policy replica wired as main.ts wires it, over the test database and NATS (run-scoped subjects). */
export async function startReplica(db: TestDatabase, { defaultPlan = 'free' } = {}): Promise<Replica> {
  const { modelText, catalogue } = await readPolicyFiles(policyDir);
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
  const nc = await connectNats({ servers: infra.natsUrl, name: 'policy-test', logger });
  const rules = createTenantRuleQueries(createTenantScope(prisma));
  const decisions = createDecisionLibrary({ modelText, catalogue, rules, defaultPlan, maxCachedTenants: 100, maxAgeMs: 60_000 });
  const changes = createPolicyChangeChannel({ nc, subjectPrefix: testRunId, logger });
  changes.subscribe((tenantId) => decisions.invalidate(tenantId));
  await nc.flush();
  // Audit events go to the run's JetStream audit stream, as main.ts publishes them (without the spool).
  const durableAudit = createAuditPublisher({ nc, subjectPrefix: testRunId });
  await durableAudit.ensureStream();
  const grants = createGrantLibrary({
    store: rules,
    catalogue,
    announceChange(tenantId) {
      decisions.invalidate(tenantId);
      changes.publish(tenantId);
    },
    audit: createChangeAuditPublisher({ publisher: durableAudit, logger }),
  });
  const server = createGrpcServer({ identity: identities['policy'], logger, services: [createPolicyService({ decisions, grants })] });
  const port = await server.listen('127.0.0.1', 0);
  server.setServing(true);
  const client = createGrpcClient(PolicyService, {
    address: `127.0.0.1:${port}`,
    deadlineMs: 5_000,
    credential: identities['tenant-registry'].credentialFor('policy'),
  });
  return {
    server,
    prisma,
    nc,
    client,
    async close() {
      client.close();
      await server.drain(1_000);
      await nc.drain();
      await prisma.$disconnect();
    },
  };
}
