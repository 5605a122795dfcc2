import { PrismaPg } from '@prisma/adapter-pg';
import {
  AppError,
  connectNats,
  createAuditPublisher,
  createChangeAuditPublisher,
  createGrpcClient,
  createGrpcServer,
  createTrustedIdentities,
  createLogger,
  createTenantScope,
  implement,
  type GrpcClient,
  type GrpcServer,
  type Logger,
  type MsgHdrs,
  type NatsConnection,
} from '@portcullis/kit';
import type { Principal, Role } from '@portcullis/proto/common';
import { PolicyService } from '@portcullis/proto/policy';
import { TenantRegistryService, type Domain } from '@portcullis/proto/tenant';
import { infra, testRunId, type TestDatabase } from '@portcullis/test';
import { createTenantChangePublisher, changeHeader, tenantChangedSubject } from '../src/events/tenant-changes.js';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createTenantRegistryService } from '../src/grpc/tenant-registry-service.js';
import { createChatGroupLibrary } from '../src/libraries/chat-groups.js';
import { createContextResolver } from '../src/libraries/context-resolution.js';
import { createDomainOwnership } from '../src/libraries/domain-ownership.js';
import { createMembershipLibrary } from '../src/libraries/memberships.js';
import { createTeamLibrary } from '../src/libraries/teams.js';
import { createTenantLibrary } from '../src/libraries/tenants.js';
import { createChatGroupQueries } from '../src/queries/chat-groups.js';
import { createLookupQueries } from '../src/queries/lookups.js';
import { createMembershipQueries } from '../src/queries/memberships.js';
import { createTeamQueries } from '../src/queries/teams.js';
import { createTenantQueries } from '../src/queries/tenants.js';

const identities = createTrustedIdentities();

export const logger: Logger = createLogger({ name: 'tenant-registry-test', level: 'silent' });
export const migrationsDir = new URL('../prisma/migrations', import.meta.url).pathname;

export interface RoleCall {
  call: 'assign' | 'revoke';
  tenantId: string;
  userId: string;
  role: Role;
  /** The id of the actor the call carried; empty when it carried none (a tenant's first owner). */
  actorId: string;
}

export interface PlanCall {
  tenantId: string;
  plan: string;
}

/** Plans the fake policy service knows; any other is INVALID_ARGUMENT, as policies/plans.csv decides in the real one. */
export const knownPlans = ['free', 'pro', 'enterprise'];

/** A stand-in policy service that records role and plan changes and can be made to fail. */
export interface FakePolicy {
  address: string;
  calls: RoleCall[];
  plans: PlanCall[];
  failing: boolean;
  stop(): Promise<void>;
}

export async function startFakePolicy(): Promise<FakePolicy> {
  const fake = { calls: [] as RoleCall[], plans: [] as PlanCall[], failing: false };
  const available = () => {
    if (fake.failing) throw new AppError('DEPENDENCY_UNAVAILABLE', 'policy store is unavailable');
  };
  const record = (call: RoleCall['call'], request: { tenantId: string; userId: string; role: Role; actor?: Principal | undefined }) => {
    available();
    fake.calls.push({ call, tenantId: request.tenantId, userId: request.userId, role: request.role, actorId: request.actor?.id ?? '' });
    return {};
  };
  const denied = { allowed: false, reason: 'fake policy never allows' };
  const server = createGrpcServer({
    identity: identities.policy,
    logger,
    services: [
      implement(PolicyService, {
        async check() {
          return denied;
        },
        async batchCheck(request) {
          return { decisions: request.queries.map(() => denied) };
        },
        async explain() {
          return { ...denied, held: [], steps: [] };
        },
        async listCapabilities() {
          return { capabilities: [] };
        },
        async assignRole(request) {
          return record('assign', request);
        },
        async revokeRole(request) {
          return record('revoke', request);
        },
        async grantPermission() {
          throw new AppError('PERMISSION_DENIED', 'the fake policy grants no permissions');
        },
        async revokePermission() {
          throw new AppError('PERMISSION_DENIED', 'the fake policy grants no permissions');
        },
        async setTenantPlan(request) {
          available();
          if (!knownPlans.includes(request.plan)) throw new AppError('INVALID_ARGUMENT', `unknown plan ${request.plan}`);
          fake.plans.push({ tenantId: request.tenantId, plan: request.plan });
          return {};
        },
      }),
    ],
  });
  const port = await server.listen('127.0.0.1', 0);
  server.setServing(true);
  return Object.assign(fake, { address: `127.0.0.1:${port}`, stop: () => server.drain(1_000) });
}

export interface ChangeNotice {
  tenantId: string;
  change: string;
}

/** The DNS the registry proves domain ownership against: TXT records held in memory. */
export interface FakeDns {
  /** TXT records by name, each as its character strings (what node's dns.resolveTxt answers). */
  records: Map<string, string[][]>;
  /** Every name looked up, in order. */
  queried: string[];
  /** Adds a TXT record with this value under the name. */
  publish(recordName: string, value: string): void;
  /** When set, every lookup fails as a resolver that cannot answer (SERVFAIL). */
  failing: boolean;
}

function createFakeDns(): FakeDns & { resolveTxt(name: string): Promise<string[][]> } {
  const records = new Map<string, string[][]>();
  const dns = {
    records,
    queried: [] as string[],
    failing: false,
    publish(recordName: string, value: string) {
      records.set(recordName, [...(records.get(recordName) ?? []), [value]]);
    },
    resolveTxt(name: string): Promise<string[][]> {
      dns.queried.push(name);
      if (dns.failing) return Promise.reject(Object.assign(new Error(`queryTxt ESERVFAIL ${name}`), { code: 'ESERVFAIL' }));
      const found = records.get(name);
      if (!found) return Promise.reject(Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
      return Promise.resolve(found.map((chunks) => [...chunks]));
    },
  };
  return dns;
}

/** The registry wired as main.ts wires it, against a test database and a given policy address. */
export interface Registry {
  client: GrpcClient<typeof TenantRegistryService>;
  /** Every `tenant.changed` notice seen since start. */
  notices: ChangeNotice[];
  /** The DNS that VerifyDomain asks; nothing is exempt from it. */
  dns: FakeDns;
  /** AddDomain, then the returned verification record published in the fake DNS, then VerifyDomain: the verified domain. */
  addVerifiedDomain(request: { tenantId: string; assistantId: string; host: string }): Promise<Domain>;
  stop(): Promise<void>;
}

export async function startRegistry(db: TestDatabase, policyAddress: string): Promise<Registry> {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
  const nc: NatsConnection = await connectNats({ servers: infra.natsUrl, name: 'tenant-registry-test', logger });
  const notices: ChangeNotice[] = [];
  const subscription = nc.subscribe(tenantChangedSubject(testRunId), {
    callback(error, message) {
      if (error) return;
      const headers: MsgHdrs | undefined = message.headers;
      notices.push({ tenantId: message.string(), change: headers?.get(changeHeader) ?? '' });
    },
  });
  await nc.flush();
  // Audit events go to the run's JetStream audit stream, as main.ts publishes them (without the spool).
  const durableAudit = createAuditPublisher({ nc, subjectPrefix: testRunId });
  await durableAudit.ensureStream();
  const audit = createChangeAuditPublisher({ publisher: durableAudit, logger });

  const policy = createGrpcClient(PolicyService, {
    address: policyAddress,
    deadlineMs: 2_000,
    credential: identities['tenant-registry'].credentialFor('policy'),
  });
  const scope = createTenantScope(prisma);
  const lookups = createLookupQueries({ db: prisma, scope });
  const changes = createTenantChangePublisher({ nc, subjectPrefix: testRunId, logger });
  const dns = createFakeDns();
  const ownership = createDomainOwnership({ resolveTxt: (name) => dns.resolveTxt(name), exemptSuffixes: [] });
  const tenants = createTenantLibrary({ store: createTenantQueries(scope), ownership, policy, announce: changes.publish, audit });
  const memberships = createMembershipLibrary({ store: createMembershipQueries(scope), lookups, policy, announce: changes.publish, audit });
  const teams = createTeamLibrary({
    store: createTeamQueries(scope),
    members: createMembershipQueries(scope),
    announce: changes.publish,
    audit,
  });
  const chatGroups = createChatGroupLibrary({
    store: createChatGroupQueries(scope),
    members: createMembershipQueries(scope),
    announce: changes.publish,
  });
  const contexts = createContextResolver({ lookups });
  const server: GrpcServer = createGrpcServer({
    identity: identities['tenant-registry'],
    logger,
    services: [createTenantRegistryService({ tenants, memberships, teams, chatGroups, contexts })],
  });
  const port = await server.listen('127.0.0.1', 0);
  server.setServing(true);
  const client = createGrpcClient(TenantRegistryService, {
    address: `127.0.0.1:${port}`,
    deadlineMs: 5_000,
    credential: identities['platform-ops'].credentialFor('tenant-registry'),
  });

  return {
    client,
    notices,
    dns,
    async addVerifiedDomain(request) {
      const { domain: added } = await client.addDomain(request);
      if (!added?.verification) throw new Error('no domain with its verification record in the AddDomain response');
      dns.publish(added.verification.recordName, added.verification.recordValue);
      const { domain } = await client.verifyDomain({ tenantId: request.tenantId, domainId: added.id });
      if (!domain?.verifiedAt) throw new Error('VerifyDomain answered without a verified domain');
      return domain;
    },
    async stop() {
      client.close();
      policy.close();
      await server.drain(1_000);
      subscription.unsubscribe();
      await nc.drain();
      await prisma.$disconnect();
    },
  };
}
