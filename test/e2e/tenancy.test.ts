import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createGrpcClient, type GrpcClient } from '@portcullis/kit';
import { TenantStatus } from '@portcullis/proto/common';
import { TenantRegistryService } from '@portcullis/proto/tenant';
import { demo, httpJson, signIn } from '../../deploy/local/seed.mjs';
import { pollUntil } from '../src/infra.js';
import { startTestPlatform, type TestPlatform } from '../src/platform.js';

interface ContextBody {
  tenant?: { id: string; name: string };
  assistantId?: string | null;
  error?: { code: string; message: string; requestId: string };
}

/** "Within one second" of the change being committed (the RPC has answered). */
const withinOneSecond = { timeoutMs: 1_000, intervalMs: 25 };

describe('tenant suspension and domain moves reach every gateway replica within one second', () => {
  let platform: TestPlatform;
  /** Both gateway processes: the platform's own and a second replica. */
  let gateways: string[];
  /** tenant-registry over gRPC: the platform-operations RPCs have no gateway route. */
  let registry: GrpcClient<typeof TenantRegistryService>;
  let tokens: { owner: string; betaOwner: string };

  beforeAll(async () => {
    platform = await startTestPlatform();
    const replica = await platform.startGatewayReplica();
    gateways = [platform.gatewayUrl, replica.url];
    registry = createGrpcClient(TenantRegistryService, {
      address: `127.0.0.1:${platform.ports['tenant-registry'].grpc}`,
      deadlineMs: 5_000,
      credential: platform.identityOf('platform-ops').credentialFor('tenant-registry'),
    });
    const { gatewayUrl, passwords, seeded } = platform;
    tokens = {
      owner: await signIn(gatewayUrl, demo.accounts.owner, passwords.owner, seeded.tenantId),
      betaOwner: await signIn(gatewayUrl, demo.accounts.betaOwner, passwords.betaOwner, seeded.beta.tenantId),
    };
  }, 180_000);

  afterAll(async () => {
    // beforeAll may have failed before these existed.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    registry?.close();
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await platform?.stop();
  }, 60_000);

  /** GET /api/context on one gateway: by the tenant's domain, by X-Assistant-Id, or on the platform host (the token's tenant). */
  const context = async (gateway: string, token: string, via: { host?: string; assistantId?: string } = {}) => {
    const response = await httpJson(gateway, 'GET', '/api/context', {
      token,
      ...(via.host ? { host: via.host } : {}),
      ...(via.assistantId ? { headers: { 'x-assistant-id': via.assistantId } } : {}),
    });
    return { status: response.status, body: response.body as ContextBody };
  };

  /** Polls until `accept` holds for the answer of every gateway; returns those answers. */
  const onEveryGateway = (
    ask: (gateway: string) => Promise<{ status: number; body: ContextBody }>,
    accept: (answer: { status: number; body: ContextBody }) => boolean,
    what: string,
  ) =>
    pollUntil(
      async () => {
        const answers = await Promise.all(gateways.map(ask));
        return answers.every(accept) ? answers : undefined;
      },
      { ...withinOneSecond, what },
    );

  it('refuses a suspended tenant on both gateways — by domain, assistant id and token — and serves it again once reactivated', async () => {
    const { seeded } = platform;
    const ways = [{ host: seeded.host }, { assistantId: seeded.assistantId }, {}];
    // Warm both gateways' caches, so that only the change notice can make them see the suspension.
    for (const via of ways) {
      const answers = await Promise.all(gateways.map((gateway) => context(gateway, tokens.owner, via)));
      expect(answers.map((a) => [a.status, a.body.tenant?.id])).toEqual(gateways.map(() => [200, seeded.tenantId]));
    }

    const { tenant } = await registry.setTenantStatus({ tenantId: seeded.tenantId, status: TenantStatus.SUSPENDED });
    expect(tenant?.status).toBe(TenantStatus.SUSPENDED);
    for (const via of ways) {
      const answers = await onEveryGateway(
        (gateway) => context(gateway, tokens.owner, via),
        (a) => a.status === 403 && a.body.error?.code === 'TENANT_SUSPENDED',
        `TENANT_SUSPENDED via ${JSON.stringify(via)}`,
      );
      // A clear refusal, not data: no tenant, no assistant, not even the tenant's name.
      for (const { body } of answers) {
        expect(Object.keys(body)).toEqual(['error']);
        expect(JSON.stringify(body)).not.toContain(demo.tenantName);
      }
    }
    // Another tenant is untouched.
    for (const gateway of gateways) {
      expect((await context(gateway, tokens.betaOwner)).body.tenant?.id).toBe(seeded.beta.tenantId);
    }

    await registry.setTenantStatus({ tenantId: seeded.tenantId, status: TenantStatus.ACTIVE });
    for (const via of ways) {
      await onEveryGateway(
        (gateway) => context(gateway, tokens.owner, via),
        (a) => a.status === 200 && a.body.tenant?.id === seeded.tenantId,
        `the reactivated tenant via ${JSON.stringify(via)}`,
      );
    }
  });

  it('moves a domain to another assistant: both gateways resolve the new assistant', async () => {
    const { seeded } = platform;
    const host = `moving.${demo.host}`;
    const created = await httpJson(platform.gatewayUrl, 'POST', '/api/assistants', {
      token: tokens.owner,
      body: { name: 'Second Assistant' },
    });
    expect(created.status).toBe(201);
    const { assistantId: second } = created.body as { assistantId: string };
    const added = await httpJson(platform.gatewayUrl, 'POST', `/api/assistants/${seeded.assistantId}/domains`, {
      token: tokens.owner,
      body: { host },
    });
    expect(added.status).toBe(201);
    const { domainId } = added.body as { domainId: string };
    await onEveryGateway(
      (gateway) => context(gateway, tokens.owner, { host }),
      (a) => a.body.assistantId === seeded.assistantId,
      'the first assistant on every gateway',
    );

    const { domain } = await registry.moveDomain({ tenantId: seeded.tenantId, domainId, assistantId: second });
    expect(domain).toMatchObject({ id: domainId, host, assistantId: second });
    await onEveryGateway(
      (gateway) => context(gateway, tokens.owner, { host }),
      (a) => a.status === 200 && a.body.assistantId === second,
      'the moved domain resolving to the second assistant',
    );
    // The tenant's other domain still routes where it did.
    for (const gateway of gateways) {
      expect((await context(gateway, tokens.owner, { host: seeded.host })).body.assistantId).toBe(seeded.assistantId);
    }
  });

  it('routes a claimed domain only once its TXT record proves ownership, and to the tenant that proved it first', async () => {
    const { seeded } = platform;
    const host = `shop-${Date.now().toString(36)}.example.test`;
    type DomainBody = {
      domainId: string;
      verified: boolean;
      verification: { type: string; name: string; value: string };
      error?: { code: string };
    };
    const claim = async (token: string, assistantId: string) => {
      const answer = await httpJson(platform.gatewayUrl, 'POST', `/api/assistants/${assistantId}/domains`, { token, body: { host } });
      expect(answer.status).toBe(201);
      return answer.body as DomainBody;
    };
    const verify = async (token: string, domainId: string) => {
      const answer = await httpJson(platform.gatewayUrl, 'POST', `/api/domains/${domainId}/verify`, { token, body: {} });
      return { status: answer.status, body: answer.body as DomainBody };
    };

    const alpha = await claim(tokens.owner, seeded.assistantId);
    expect(alpha).toMatchObject({ verified: false, verification: { type: 'TXT', name: `_portcullis-challenge.${host}` } });
    expect(alpha.verification.value).toMatch(/^portcullis-domain-verification=[A-Za-z0-9_-]{32}$/);
    // Beta Labs claims the same host: an unverified claim blocks nobody.
    const betaAssistant = await httpJson(platform.gatewayUrl, 'POST', '/api/assistants', {
      token: tokens.betaOwner,
      body: { name: 'Shop' },
    });
    expect(betaAssistant.status).toBe(201);
    const beta = await claim(tokens.betaOwner, (betaAssistant.body as { assistantId: string }).assistantId);
    expect(beta.verification.value).not.toBe(alpha.verification.value);

    // Not verified: the host routes nowhere, and verifying without the record says what to publish.
    for (const gateway of gateways) expect((await context(gateway, tokens.owner, { host })).status).toBe(404);
    const early = await verify(tokens.owner, alpha.domainId);
    expect(early.body.error?.code).toBe('FAILED_PRECONDITION');

    platform.dns.publishTxt(alpha.verification.name, alpha.verification.value);
    platform.dns.publishTxt(beta.verification.name, beta.verification.value);
    const verified = await verify(tokens.owner, alpha.domainId);
    expect(verified).toMatchObject({ status: 200, body: { verified: true } });
    await onEveryGateway(
      (gateway) => context(gateway, tokens.owner, { host }),
      (a) => a.status === 200 && a.body.assistantId === seeded.assistantId,
      'the verified domain resolving on every gateway',
    );
    // Beta's record is published too, but Alpha verified the host first.
    expect((await verify(tokens.betaOwner, beta.domainId)).body.error?.code).toBe('ALREADY_EXISTS');
    // Nobody verifies another tenant's domain.
    expect((await verify(tokens.betaOwner, alpha.domainId)).body.error?.code).toBe('NOT_FOUND');
  });
});
