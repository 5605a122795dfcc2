import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { create } from '@bufbuild/protobuf';
import { PrincipalSchema } from '@portcullis/proto/common';
import { applySetup, loadFixtureSuites, type FixtureCase, type FixtureSuite } from '../test-support/fixtures.js';
import { createMemoryRuleStore } from '../test-support/memory-rule-store.js';
import { createDecisionLibrary, maxBatchSize, type DecisionLibrary } from './decisions.js';
import { createGrantLibrary } from './grants.js';
import { readPolicyFiles, type PolicyFiles } from './policy-files.js';

const policies = new URL('../../../../policies/', import.meta.url);
const fixtures = new URL('fixtures/', policies);

let files: PolicyFiles;
let suites: FixtureSuite[];

beforeAll(async () => {
  files = await readPolicyFiles(policies);
  suites = await loadFixtureSuites(fixtures);
});

/** The decision library over an in-memory store, set up through the grant library (owners as actors). */
async function libraryFor(suite: FixtureSuite): Promise<DecisionLibrary> {
  const store = createMemoryRuleStore();
  const decisions = createDecisionLibrary({
    ...files,
    rules: store,
    defaultPlan: 'free',
    maxCachedTenants: 100,
    maxAgeMs: 60_000,
  });
  const grants = createGrantLibrary({
    store,
    catalogue: files.catalogue,
    announceChange: (tenantId) => decisions.invalidate(tenantId),
    // The fixtures are about decisions; what grants record is tested in grants.test.ts.
    audit: { publish: () => Promise.resolve('event-id') },
  });
  await applySetup(suite, grants);
  return decisions;
}

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, index) => items.slice(index * size, (index + 1) * size));

/** Cases of one principal (as sent) in one tenant, so a batch asks them together. */
function byAsker(cases: readonly FixtureCase[]): FixtureCase[][] {
  const groups = new Map<string, FixtureCase[]>();
  for (const entry of cases) {
    const key = `${entry.principal.kind}/${entry.principal.id}/${entry.principal.tenantId}/${entry.principal.role}/${entry.tenantId}`;
    groups.set(key, [...(groups.get(key) ?? []), entry]);
  }
  return [...groups.values()];
}

describe('decision fixtures (policies/fixtures/*.yaml) against the library', () => {
  it('finds the fixture files, each with cases', () => {
    expect(suites.map((suite) => suite.file)).toEqual(['matrix.yaml', 'plans.yaml', 'scopes.yaml']);
    for (const suite of suites) expect(suite.cases.length).toBeGreaterThan(0);
  });

  it('matrix.yaml is what generate-matrix.mjs produces from the policy files', () => {
    const script = fileURLToPath(new URL('generate-matrix.mjs', fixtures));
    expect(execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8' })).toContain('up to date');
  });

  it('Check gives every case its expected effect (and reason, where the case names one)', async () => {
    for (const suite of suites) {
      const decisions = await libraryFor(suite);
      const wrong: string[] = [];
      for (const entry of suite.cases) {
        const decision = await decisions.check(entry);
        if (decision.allowed !== entry.allowed || (entry.reason !== undefined && !decision.reason.includes(entry.reason))) {
          wrong.push(`${suite.file}: ${entry.name}: got ${decision.allowed ? 'allow' : 'deny'} (${decision.reason})`);
        }
      }
      expect(wrong).toEqual([]);
    }
  });

  it('BatchCheck, Explain and ListCapabilities agree with Check on every case', async () => {
    for (const suite of suites) {
      const decisions = await libraryFor(suite);
      const wrong: string[] = [];
      for (const group of byAsker(suite.cases)) {
        const [{ principal, tenantId } = group[0]!] = group;
        for (const batch of chunks(group, maxBatchSize)) {
          const answers = await decisions.checkMany({ principal, tenantId, queries: batch });
          batch.forEach((entry, index) => {
            if (answers[index]?.allowed !== entry.allowed) wrong.push(`${suite.file}: BatchCheck ${entry.name}`);
          });
        }
        for (const entry of group) {
          const explanation = await decisions.explain(entry);
          const matchedIff = (explanation.matched !== undefined) === entry.allowed;
          if (explanation.allowed !== entry.allowed || !matchedIff || explanation.steps.length === 0) {
            wrong.push(`${suite.file}: Explain ${entry.name}`);
          }
        }
        const listed = new Map<string, Set<string>>();
        for (const entry of group) {
          if (!listed.has(entry.assistantId)) {
            listed.set(
              entry.assistantId,
              new Set(await decisions.listCapabilities({ principal, tenantId, assistantId: entry.assistantId })),
            );
          }
          const known = files.catalogue.isKnown(`${entry.object}:${entry.action}`);
          if (known && listed.get(entry.assistantId)?.has(`${entry.object}:${entry.action}`) !== entry.allowed) {
            wrong.push(`${suite.file}: ListCapabilities ${entry.name}`);
          }
        }
      }
      expect(wrong).toEqual([]);
    }
  });

  it('covers role × every catalogue capability × (own, other tenant) × (tenant-wide, assistant A, assistant B)', () => {
    const matrix = suites.find((suite) => suite.file === 'matrix.yaml')!;
    const seen = new Set(
      matrix.cases.map((entry) => `${entry.principal.id}/${entry.tenantId}/${entry.assistantId}/${entry.object}:${entry.action}`),
    );
    for (const { principal } of matrix.principals) {
      for (const tenant of matrix.tenants) {
        for (const assistantId of ['', ...tenant.assistantIds]) {
          for (const capability of files.catalogue.capabilities) {
            expect(seen.has(`${principal.id}/${tenant.id}/${assistantId}/${capability}`)).toBe(true);
          }
        }
      }
    }
  });
});

describe('the cross-tenant matrix', () => {
  it('every cross-tenant case in the fixtures expects deny', () => {
    const crossTenant = suites.flatMap((suite) => suite.cases.filter((entry) => entry.crossTenant));
    expect(crossTenant.length).toBeGreaterThan(1_000);
    expect(crossTenant.filter((entry) => entry.allowed).map((entry) => entry.name)).toEqual([]);
  });

  it('zero allows across tenants: every principal × every capability × every other tenant and its assistants, as itself and claiming that tenant', async () => {
    let asked = 0;
    const allowed: string[] = [];
    for (const suite of suites) {
      const decisions = await libraryFor(suite);
      for (const { alias, principal, homeTenantId } of suite.principals) {
        for (const tenant of suite.tenants.filter((other) => other.id !== homeTenantId)) {
          const claiming = create(PrincipalSchema, { ...principal, tenantId: tenant.id });
          for (const asker of [principal, claiming]) {
            for (const assistantId of ['', ...tenant.assistantIds]) {
              const queries = files.catalogue.capabilities.map((capability) => {
                const [object = '', action = ''] = capability.split(':');
                return { assistantId, object, action };
              });
              const answers = await decisions.checkMany({ principal: asker, tenantId: tenant.id, queries });
              const listed = await decisions.listCapabilities({ principal: asker, tenantId: tenant.id, assistantId });
              asked += answers.length;
              answers.forEach((answer, index) => {
                if (answer.allowed) allowed.push(`${suite.file}: ${alias} in ${tenant.alias}: ${files.catalogue.capabilities[index]}`);
              });
              if (listed.length > 0) allowed.push(`${suite.file}: ${alias} lists ${listed.join(',')} in ${tenant.alias}`);
            }
          }
        }
      }
    }
    expect(asked).toBeGreaterThan(1_000);
    expect(allowed).toEqual([]);
  });
});
