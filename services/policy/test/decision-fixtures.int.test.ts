import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create } from '@bufbuild/protobuf';
import { PrincipalSchema } from '@portcullis/proto/common';
import { createTestDatabase, type TestDatabase } from '@portcullis/test';
import { maxBatchSize } from '../src/libraries/decisions.js';
import { readPolicyFiles } from '../src/libraries/policy-files.js';
import { applySetup, loadFixtureSuites, type FixtureCase, type FixtureSuite } from '../src/test-support/fixtures.js';
import { policyDir, startReplica, type Replica } from './replica.js';

/**
 * The decision fixtures of policies/fixtures/*.yaml through the real gRPC service over Postgres:
 * each file's setup is made with AssignRole (the first owner without an actor, everyone else
 * by that owner), GrantPermission and SetTenantPlan, then every case is asked with Check and
 * BatchCheck. Every file gets fresh tenant ids, so files never see each other's rules.
 */
/** The same principal (as sent) asking in the same tenant. */
const askerOf = ({ principal, tenantId }: FixtureCase) =>
  [principal.kind, principal.id, principal.tenantId, principal.role, principal.actingUserId, tenantId].join('/');

describe('decision fixtures against the gRPC service and Postgres', () => {
  let db: TestDatabase;
  let replica: Replica;
  let suites: FixtureSuite[];
  let capabilities: string[];

  beforeAll(async () => {
    db = await createTestDatabase('policy_fixtures', new URL('../prisma/migrations', import.meta.url).pathname);
    replica = await startReplica(db, { defaultPlan: 'free' });
    suites = await loadFixtureSuites(new URL('fixtures/', policyDir));
    capabilities = (await readPolicyFiles(policyDir)).catalogue.capabilities;
    for (const suite of suites) await applySetup(suite, replica.client);
  });

  afterAll(async () => {
    await replica.close();
    await db.drop();
  });

  it('Check gives every case its expected effect', async () => {
    const wrong: string[] = [];
    let asked = 0;
    for (const suite of suites) {
      for (const entry of suite.cases) {
        const { principal, tenantId, assistantId, object, action } = entry;
        const decision = await replica.client.check({ principal, tenantId, assistantId, object, action });
        asked += 1;
        if (decision.allowed !== entry.allowed || (entry.reason !== undefined && !decision.reason.includes(entry.reason))) {
          wrong.push(`${suite.file}: ${entry.name}: got ${decision.allowed ? 'allow' : 'deny'} (${decision.reason})`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(asked).toBeGreaterThan(2_000);
  });

  it('BatchCheck gives the same answers, 100 queries at a time', async () => {
    const wrong: string[] = [];
    for (const suite of suites) {
      for (let start = 0; start < suite.cases.length; start += 1) {
        // One batch per run of cases with the same principal and tenant.
        const first = suite.cases[start]!;
        const batch = [first];
        while (
          batch.length < maxBatchSize &&
          start + batch.length < suite.cases.length &&
          askerOf(suite.cases[start + batch.length]!) === askerOf(first)
        ) {
          batch.push(suite.cases[start + batch.length]!);
        }
        start += batch.length - 1;
        const queries = batch.map(({ assistantId, object, action }) => ({ assistantId, object, action }));
        const { decisions } = await replica.client.batchCheck({ principal: first.principal, tenantId: first.tenantId, queries });
        batch.forEach((entry, index) => {
          if (decisions[index]?.allowed !== entry.allowed) wrong.push(`${suite.file}: ${entry.name}`);
        });
      }
    }
    expect(wrong).toEqual([]);
  });

  it('zero allows across tenants, for every principal of every file × every capability × every other tenant and assistant', async () => {
    const allowed: string[] = [];
    let asked = 0;
    for (const suite of suites) {
      for (const { alias, principal, homeTenantId } of suite.principals) {
        for (const tenant of suite.tenants.filter((other) => other.id !== homeTenantId)) {
          for (const asker of [principal, create(PrincipalSchema, { ...principal, tenantId: tenant.id })]) {
            for (const assistantId of ['', ...tenant.assistantIds]) {
              const queries = capabilities.map((capability) => {
                const [object = '', action = ''] = capability.split(':');
                return { assistantId, object, action };
              });
              const { decisions } = await replica.client.batchCheck({ principal: asker, tenantId: tenant.id, queries });
              asked += decisions.length;
              decisions.forEach((decision, index) => {
                if (decision.allowed) allowed.push(`${suite.file}: ${alias} in ${tenant.alias}: ${capabilities[index]}`);
              });
            }
          }
        }
      }
    }
    expect(asked).toBeGreaterThan(1_000);
    expect(allowed).toEqual([]);
  });
});
