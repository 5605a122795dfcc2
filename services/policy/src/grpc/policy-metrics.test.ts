import { create } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from '@jest/globals';
import { Counter, createMetrics, metricNames, type Caller, type ServiceHandlers } from '@portcullis/kit';
import { PrincipalKind } from '@portcullis/proto/common';
import { BatchCheckRequestSchema, CheckRequestSchema, type PolicyService } from '@portcullis/proto/policy';
import type { GrantLibrary } from '../libraries/grants.js';
import { createPolicyService } from './policy-service.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const alice = '00000000-0000-4000-8000-0000000000c1';
const call = {
  metadata: new Metadata(),
  requestId: 'test',
  deadline: undefined,
  caller: { kind: 'platform', service: 'api-gateway' } as Caller,
};
const principal = { kind: PrincipalKind.USER, id: alice, tenantId: tenantA };

/** The service over a decision library that allows reads only, counting on a registry of its own. */
function setup() {
  const registry = createMetrics({ service: 'policy' });
  const decisionsCounted = new Counter({
    name: metricNames.policyDecisions,
    help: 'test',
    labelNames: ['outcome', 'rpc'],
    registers: [registry],
  });
  const decide = ({ action }: { action: string }) => ({ allowed: action === 'read', reason: action === 'read' ? 'granted' : 'denied' });
  const decisions = {
    check: (request: { action: string }) => Promise.resolve(decide(request)),
    checkMany: (request: { queries: readonly { action: string }[] }) => Promise.resolve(request.queries.map(decide)),
    explain: () => Promise.reject(new Error('not used')),
    listCapabilities: () => Promise.resolve([]),
  };
  const registration = createPolicyService({ decisions, grants: {} as GrantLibrary, decisionsCounted });
  const handlers = registration.handlers as ServiceHandlers<typeof PolicyService>;
  const counted = async () => {
    const values = (await decisionsCounted.get()).values;
    return Object.fromEntries(values.map(({ labels, value }) => [`${String(labels.rpc)}:${String(labels.outcome)}`, value]));
  };
  return { handlers, counted };
}

describe('PolicyService decision metrics', () => {
  it('counts every Check answer and every BatchCheck query by outcome and RPC', async () => {
    const { handlers, counted } = setup();
    await handlers.check(create(CheckRequestSchema, { principal, tenantId: tenantA, object: 'tools', action: 'read' }), call);
    await handlers.check(create(CheckRequestSchema, { principal, tenantId: tenantA, object: 'tools', action: 'invoke' }), call);
    await handlers.batchCheck(
      create(BatchCheckRequestSchema, {
        principal,
        tenantId: tenantA,
        queries: [
          { object: 'tools', action: 'read' },
          { object: 'tools', action: 'read' },
          { object: 'tools', action: 'manage' },
        ],
      }),
      call,
    );
    expect(await counted()).toEqual({ 'Check:allow': 1, 'Check:deny': 1, 'BatchCheck:allow': 2, 'BatchCheck:deny': 1 });
  });

  it('counts nothing for a call refused before deciding (a tenant caller asking about another tenant)', async () => {
    const { handlers, counted } = setup();
    const otherTenant = {
      ...call,
      caller: { kind: 'tenant', tenantId: '00000000-0000-4000-8000-00000000000b', subject: 'apikey:k' } as Caller,
    };
    await expect(
      handlers.check(create(CheckRequestSchema, { principal, tenantId: tenantA, object: 'tools', action: 'read' }), otherTenant),
    ).rejects.toMatchObject({ code: 'CROSS_TENANT' });
    expect(await counted()).toEqual({});
  });
});
