import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { demo, httpJson, newestSmsCode, signIn } from '../../deploy/local/seed.mjs';
import { infra, pollUntil } from '../src/infra.js';
import type { ReceivedSpan } from '../src/otlp-receiver.js';
import { startTestPlatform, type ListedAuditEvent, type TestPlatform } from '../src/platform.js';

type AuditEntry = ListedAuditEvent;

describe('the whole platform, every process spawned', () => {
  let platform: TestPlatform;
  let tokens: { owner: string; user: string; beta: string };

  beforeAll(async () => {
    platform = await startTestPlatform();
    const { gatewayUrl, passwords, seeded } = platform;
    tokens = {
      owner: await signIn(gatewayUrl, demo.accounts.owner, passwords.owner, seeded.tenantId),
      user: await signIn(gatewayUrl, demo.accounts.user, passwords.user, seeded.tenantId),
      beta: await signIn(gatewayUrl, demo.accounts.betaOwner, passwords.betaOwner, seeded.beta.tenantId),
    };
  }, 180_000);

  afterAll(async () => {
    // beforeAll may have failed before the platform existed.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await platform?.stop();
  }, 60_000);

  interface InvokeBody {
    output?: { echo?: unknown };
    error?: { code: string; message: string; requestId: string };
  }
  const invoke = async (token: string, headers: Record<string, string> = {}) => {
    const response = await httpJson(platform.gatewayUrl, 'POST', `/api/tools/${demo.toolName}/invoke`, {
      token,
      host: demo.host,
      headers,
      body: { input: { hello: 'world' } },
    });
    return { status: response.status, body: response.body as InvokeBody };
  };

  const auditEntries = async (): Promise<AuditEntry[]> => {
    const response = await httpJson(platform.gatewayUrl, 'GET', '/api/audit/events?pageSize=200', { token: tokens.owner, host: demo.host });
    expect(response.status).toBe(200);
    return (response.body as { events: AuditEntry[] }).events;
  };

  it('lets the owner invoke the demo tool, refuses a user without the capability and a token of another tenant, and audits every decision', async () => {
    const owner = await invoke(tokens.owner);
    expect(owner.status).toBe(200);
    expect(owner.body.output?.echo).toEqual({ hello: 'world' });

    const user = await invoke(tokens.user);
    expect(user.status).toBe(403);
    expect(user.body.error).toMatchObject({ code: 'PERMISSION_DENIED', requestId: expect.any(String) });

    const other = await invoke(tokens.beta);
    expect(other.status).toBe(403);
    expect(other.body.error?.code).toBe('CROSS_TENANT');

    const { users, beta } = platform.seeded;
    const entries = await pollUntil(
      async () => {
        const all = await auditEntries();
        const has = (p: (e: AuditEntry) => boolean) => all.some(p);
        const complete =
          has(
            (e) =>
              e.kind === 'authz.decision' &&
              e.outcome === 'allow' &&
              e.principal?.id === users.owner &&
              e.object === 'tools' &&
              e.action === 'invoke',
          ) &&
          has((e) => e.kind === 'authz.decision' && e.outcome === 'deny' && e.principal?.id === users.user && e.object === 'tools') &&
          has(
            (e) =>
              e.kind === 'authz.decision' &&
              e.outcome === 'deny' &&
              e.principal?.id === beta.userId &&
              e.reason === 'credential belongs to another tenant',
          ) &&
          has((e) => e.kind === 'tool.call' && e.outcome === 'success');
        return complete ? all : undefined;
      },
      { timeoutMs: 15_000, what: 'all decisions in the audit list' },
    );
    expect(entries.every((e) => e.traceId.length === 32)).toBe(true);
  });

  it('lets an admin add users but never grant owner or admin (the policy decision alone would allow members:manage)', async () => {
    const { gatewayUrl, passwords, seeded } = platform;
    const admin = await signIn(gatewayUrl, demo.accounts.admin, passwords.admin, seeded.tenantId);
    const grant = (userId: string, role: string) => httpJson(gatewayUrl, 'POST', '/api/members', { token: admin, body: { userId, role } });
    expect((await grant(seeded.users.admin, 'owner')).status).toBe(403);
    expect((await grant(seeded.users.user, 'admin')).status).toBe(403);
    expect((await grant(seeded.users.owner, 'user')).status).toBe(403);
    expect((await grant(seeded.users.user, 'user')).status).toBe(201);
  });

  describe('sessions and refresh tokens', () => {
    interface Tokens {
      accessToken: string;
      refreshToken: string;
      sessionId: string;
    }
    const selectTenant = async (): Promise<Tokens> => {
      const { gatewayUrl, passwords, seeded } = platform;
      const login = await httpJson(gatewayUrl, 'POST', '/api/auth/login', {
        body: { email: demo.accounts.admin, password: passwords.admin },
      });
      const loginTicket = (login.body as { loginTicket: string }).loginTicket;
      const selected = await httpJson(gatewayUrl, 'POST', '/api/auth/select-tenant', { body: { loginTicket, tenantId: seeded.tenantId } });
      expect(selected.status).toBe(200);
      return selected.body as Tokens;
    };
    const context = (token: string) => httpJson(platform.gatewayUrl, 'GET', '/api/context', { token });
    const refresh = (refreshToken: string) => httpJson(platform.gatewayUrl, 'POST', '/api/auth/refresh', { body: { refreshToken } });

    it('rotates refresh tokens, and a reused one ends the whole session at once', async () => {
      const first = await selectTenant();
      const rotated = await refresh(first.refreshToken);
      expect(rotated.status).toBe(200);
      const second = rotated.body as Tokens;
      expect(second.sessionId).toBe(first.sessionId);
      expect(second.refreshToken).not.toBe(first.refreshToken);
      expect((await context(second.accessToken)).status).toBe(200);

      const replayed = await refresh(first.refreshToken);
      expect(replayed.status).toBe(401);
      // The family is revoked and the session gone: neither the newest refresh token nor any access token of it works.
      expect((await refresh(second.refreshToken)).status).toBe(401);
      expect((await context(second.accessToken)).status).toBe(401);
      expect((await context(first.accessToken)).status).toBe(401);
    });

    it('logout ends this session only; logout-all ends every session', async () => {
      const a = await selectTenant();
      const b = await selectTenant();
      const c = await selectTenant();
      const listed = await httpJson(platform.gatewayUrl, 'GET', '/api/auth/sessions', { token: a.accessToken });
      const ids = (listed.body as { sessions: { sessionId: string; current: boolean }[] }).sessions;
      expect(ids.filter((s) => [a.sessionId, b.sessionId, c.sessionId].includes(s.sessionId))).toHaveLength(3);
      expect(ids.find((s) => s.current)?.sessionId).toBe(a.sessionId);

      expect((await httpJson(platform.gatewayUrl, 'POST', '/api/auth/logout', { token: a.accessToken })).status).toBe(204);
      expect((await context(a.accessToken)).status).toBe(401);
      expect((await context(b.accessToken)).status).toBe(200);

      expect((await httpJson(platform.gatewayUrl, 'POST', '/api/auth/logout-all', { token: b.accessToken })).status).toBe(200);
      expect((await context(b.accessToken)).status).toBe(401);
      expect((await context(c.accessToken)).status).toBe(401);
      expect((await refresh(c.refreshToken)).status).toBe(401);
    });

    it('throttles sign-in after repeated wrong passwords, even with the right one', async () => {
      const { gatewayUrl, passwords } = platform;
      const email = `throttled-${Date.now()}@alpha.example`;
      const signup = await httpJson(gatewayUrl, 'POST', '/api/auth/signup', {
        body: { email, password: passwords.user, phone: '+15550100999' },
      });
      expect(signup.status).toBe(201);
      const attempt = (password: string) => httpJson(gatewayUrl, 'POST', '/api/auth/login', { body: { email, password } });
      for (let i = 0; i < 5; i += 1) expect((await attempt('wrong-password-123')).status).toBe(401);
      const refused = await attempt(passwords.user);
      expect(refused.status).toBe(429);
      expect((refused.body as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    });
  });

  it('keeps tenants apart: the other tenant sees none of these events', async () => {
    const response = await httpJson(platform.gatewayUrl, 'GET', '/api/audit/events?pageSize=200', { token: tokens.beta });
    expect(response.status).toBe(200);
    const events = (response.body as { events: AuditEntry[] }).events;
    expect(events.some((e) => e.principal?.id === platform.seeded.users.owner)).toBe(false);
  });

  it('yields ONE trace for a tool invocation across gateway, tenant-registry, policy, tool-gateway and audit, through NATS', async () => {
    const traceId = randomBytes(16).toString('hex');
    const response = await invoke(tokens.owner, { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` });
    expect(response.status).toBe(200);
    const tenantId = platform.seeded.tenantId;

    const wanted = ['api-gateway', 'tenant-registry', 'policy', 'tool-gateway', 'audit'];
    // Services whose Postgres statements for this call must be in the trace: the tool lookup and the audit insert.
    const withDatabase = ['tool-gateway', 'audit'];
    const isStatement = (s: ReceivedSpan) => s.attributes['db.system.name'] === 'postgresql';
    const spans = await pollUntil(
      () => {
        const inTrace = platform.otlp.spans.filter((s) => s.traceId === traceId);
        const services = new Set(inTrace.map((s) => s.service));
        const consumed = inTrace.filter((s) => s.service === 'audit' && s.kind === 5);
        const queried = new Set(inTrace.filter(isStatement).map((s) => s.service));
        const complete = wanted.every((s) => services.has(s)) && consumed.length >= 2 && withDatabase.every((s) => queried.has(s));
        return complete ? inTrace : undefined;
      },
      { timeoutMs: 20_000, what: 'spans of every service in one trace' },
    );

    const byId = new Map(spans.map((s) => [s.spanId, s]));
    /** The span's parent, grandparent… up to the trace's root. */
    const ancestorsOf = (span: ReceivedSpan): ReceivedSpan[] => {
      const parent = byId.get(span.parentSpanId);
      return parent ? [parent, ...ancestorsOf(parent)] : [];
    };
    // Every span except the gateway's entry span has its parent inside the same trace.
    const roots = spans.filter((s) => !byId.has(s.parentSpanId));
    expect(roots).toHaveLength(1);
    expect(roots[0]).toMatchObject({ service: 'api-gateway', kind: 2 });
    // The gateway's request span names the tenant the request resolved to (never a credential).
    expect(roots[0]?.attributes).toMatchObject({ 'portcullis.tenant_id': tenantId });
    // Postgres: each statement is a CLIENT span under its own service's gRPC server or NATS consumer
    // span; the tenant-scoped ones name the tenant.
    for (const service of withDatabase) {
      const statements = spans.filter((s) => s.service === service && isStatement(s));
      for (const statement of statements) {
        expect(statement).toMatchObject({ kind: 3, attributes: { 'db.operation.name': expect.any(String) } });
        expect(ancestorsOf(statement).some((a) => a.service === service && (a.kind === 2 || a.kind === 5))).toBe(true);
      }
      expect(statements.some((s) => s.attributes['portcullis.tenant_id'] === tenantId)).toBe(true);
    }
    // The NATS hop: the audit service's consumer spans are children of producer spans.
    for (const consumer of spans.filter((s) => s.service === 'audit' && s.kind === 5)) {
      expect(byId.get(consumer.parentSpanId)).toMatchObject({ kind: 4 });
    }
    // gRPC hops: each server span of a downstream service is the child of a client span.
    for (const service of ['tenant-registry', 'policy', 'tool-gateway']) {
      const server = spans.find((s) => s.service === service && s.kind === 2);
      expect(server && byId.get(server.parentSpanId)).toMatchObject({ kind: 3 });
    }
    // Requests that name a tenant put it on the server span.
    for (const service of ['policy', 'tool-gateway']) {
      expect(spans.find((s) => s.service === service && s.kind === 2)?.attributes).toMatchObject({ 'portcullis.tenant_id': tenantId });
    }
    // The trace continues into the upstream tool over HTTP, as the child of tool-gateway's client span.
    const received = platform.tool.calls.find((c) => c.traceparent?.includes(traceId));
    const toolParent = received?.traceparent?.split('-')[2];
    expect(spans.find((s) => s.spanId === toolParent)).toMatchObject({ service: 'tool-gateway', kind: 3 });
  });

  it("yields ONE trace for a robot event: the robot's context through NATS into the audit service, auth's check and the stored row", async () => {
    const owner = (method: string, path: string, body?: unknown) =>
      httpJson(platform.gatewayUrl, method, path, { token: tokens.owner, host: demo.host, ...(body === undefined ? {} : { body }) });
    const team = ((await owner('POST', '/api/teams', { name: 'Traced robots' })).body as { teamId: string }).teamId;
    const created = await owner('POST', '/api/robots', { name: 'traced arm', teamIds: [team] });
    expect(created.status).toBe(201);
    const { token } = created.body as { token: string };

    // The robot continues its own trace: its span is the parent of everything the platform does for the event.
    const traceId = randomBytes(16).toString('hex');
    const robotSpanId = randomBytes(8).toString('hex');
    const robotClient = new URL('../../deploy/examples/robot-client.mjs', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [robotClient, '--kind', 'arm.moved', '--team', team, '--traceparent', `00-${traceId}-${robotSpanId}-01`],
      {
        env: {
          PATH: process.env['PATH'] ?? '',
          PORTCULLIS_ROBOT_TOKEN: token,
          NATS_URL: infra.natsUrl,
          NATS_SUBJECT_PREFIX: platform.natsSubjectPrefix,
        },
      },
    );
    expect(JSON.parse(stdout)).toMatchObject({ traceId, duplicate: false });

    const tenantId = platform.seeded.tenantId;
    const isStatement = (s: ReceivedSpan) => s.service === 'audit' && s.attributes['db.system.name'] === 'postgresql';
    const spans = await pollUntil(
      () => {
        const inTrace = platform.otlp.spans.filter((s) => s.traceId === traceId);
        const complete = inTrace.some((s) => s.service === 'auth' && s.kind === 2) && inTrace.some(isStatement);
        return complete ? inTrace : undefined;
      },
      { timeoutMs: 20_000, what: "the robot event's spans in audit, auth and Postgres" },
    );
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const ancestorsOf = (span: ReceivedSpan): ReceivedSpan[] => {
      const parent = byId.get(span.parentSpanId);
      return parent ? [parent, ...ancestorsOf(parent)] : [];
    };
    // One root: the audit service's consumer span, child of the robot's own span.
    const roots = spans.filter((s) => !byId.has(s.parentSpanId));
    expect(roots).toHaveLength(1);
    const consumer = roots[0];
    expect(consumer).toMatchObject({ service: 'audit', kind: 5, parentSpanId: robotSpanId });
    expect(consumer?.attributes).toMatchObject({ 'portcullis.tenant_id': tenantId });
    // The token check: auth's server span under the audit service's client span, under the consumer.
    const authServer = spans.find((s) => s.service === 'auth' && s.kind === 2);
    const authCaller = authServer && byId.get(authServer.parentSpanId);
    expect(authCaller).toMatchObject({ service: 'audit', kind: 3 });
    expect(authCaller && ancestorsOf(authCaller)).toContain(consumer);
    // The stored row: the audit service's statements under the consumer, naming the tenant, with no token anywhere.
    const statements = spans.filter(isStatement);
    for (const statement of statements) expect(ancestorsOf(statement)).toContain(consumer);
    expect(statements.some((s) => s.attributes['portcullis.tenant_id'] === tenantId)).toBe(true);
    expect(JSON.stringify(spans)).not.toContain(token);
  });

  it('answers 503 with a clear error, never an allow, while the policy service is down', async () => {
    await platform.stopService('policy');
    try {
      const response = await invoke(tokens.owner);
      expect(response.status).toBe(503);
      expect(response.body.error).toMatchObject({
        code: 'DEPENDENCY_UNAVAILABLE',
        message: expect.stringContaining('authorization service is unavailable'),
      });
    } finally {
      platform.restartService('policy');
    }
    await pollUntil(async () => ((await invoke(tokens.owner)).status === 200 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'policy to come back',
    });
  });

  describe('phone verification before tenant creation', () => {
    interface ErrorBody {
      error: { code: string; message: string };
    }
    const post = (path: string, body: unknown) => httpJson(platform.gatewayUrl, 'POST', path, { body });

    it('requires a valid phone number at sign-up', async () => {
      const email = `nophone-${Date.now()}@gamma.example`;
      const password = `${randomBytes(12).toString('base64url')}-Pc1`;
      for (const body of [
        { email, password },
        { email, password, phone: '555-0100' },
      ]) {
        const response = await post('/api/auth/signup', body);
        expect(response.status).toBe(400);
        expect((response.body as ErrorBody).error.code).toBe('INVALID_ARGUMENT');
      }
    });

    it('refuses to create a tenant until the phone is verified by SMS code, then makes the creator its owner', async () => {
      const email = `phone-${Date.now()}@gamma.example`;
      const password = `${randomBytes(12).toString('base64url')}-Pc1`;
      const phone = `+12025550${randomInt(105, 200)}`;
      expect(
        (await post('/api/auth/signup', { email, password, phone: `${phone.slice(0, 2)} ${phone.slice(2, 5)} ${phone.slice(5)}` })).status,
      ).toBe(201);
      const login = await post('/api/auth/login', { email, password });
      expect(login.body).toMatchObject({ phoneVerified: false, tenants: [] });
      const { loginTicket } = login.body as { loginTicket: string };

      const refused = await post('/api/tenants', { loginTicket, name: 'Gamma Works' });
      expect(refused.status).toBe(400);
      expect((refused.body as ErrorBody).error).toMatchObject({
        code: 'FAILED_PRECONDITION',
        message: 'verify your phone number before creating a tenant',
      });

      const started = await post('/api/auth/phone/start', { loginTicket });
      expect(started.status).toBe(200);
      expect(started.body).toMatchObject({ phone: `+1${'*'.repeat(6)}${phone.slice(-4)}`, codeExpiresIn: 300, resendAfter: 60 });
      const again = await post('/api/auth/phone/start', { loginTicket });
      expect(again.status).toBe(429);
      expect((again.body as ErrorBody).error.code).toBe('RATE_LIMITED');

      const code = await newestSmsCode(platform.smsOutboxFile, phone);
      expect(code).toMatch(/^\d{6}$/);
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
      const wrongAnswer = await post('/api/auth/phone/verify', { loginTicket, code: wrong });
      expect(wrongAnswer.status).toBe(400);
      expect((wrongAnswer.body as ErrorBody).error.code).toBe('INVALID_ARGUMENT');
      expect((await post('/api/tenants', { loginTicket, name: 'Gamma Works' })).status).toBe(400);

      const verified = await post('/api/auth/phone/verify', { loginTicket, code });
      expect(verified.status).toBe(200);
      expect(verified.body).toEqual({ phoneVerified: true });
      const reused = await post('/api/auth/phone/verify', { loginTicket, code });
      expect((reused.body as ErrorBody).error.code).toBe('FAILED_PRECONDITION');

      const created = await post('/api/tenants', { loginTicket, name: 'Gamma Works' });
      expect(created.status).toBe(201);
      const { tenantId } = created.body as { tenantId: string; role: string };
      expect(created.body).toMatchObject({ name: 'Gamma Works', role: 'owner' });
      const selected = await post('/api/auth/select-tenant', { loginTicket, tenantId });
      expect(selected.status).toBe(200);
      expect(selected.body).toMatchObject({ tenantId, role: 'owner' });

      // The code reached the outbox file only: not the auth or gateway logs.
      for (const service of ['auth', 'api-gateway']) {
        const log = await readFile(join(platform.logDir, `${service}.log`), 'utf8');
        expect(log).not.toMatch(new RegExp(`(?<!\\d)${code ?? ''}(?!\\d)`));
      }
    });
  });

  describe('API keys', () => {
    interface KeyAnswer {
      apiKey: { id: string; kind: string; scopes: string[]; lastUsedAt: string | null };
      key: string;
    }
    const createKey = async (token: string, body: Record<string, unknown>) =>
      httpJson(platform.gatewayUrl, 'POST', '/api/api-keys', { token, host: demo.host, body: { name: 'e2e', ...body } });
    const withKey = (key: string) =>
      httpJson(platform.gatewayUrl, 'POST', `/api/tools/${demo.toolName}/invoke`, {
        host: demo.host,
        headers: { 'x-api-key': key },
        body: { input: { hello: 'key' } },
      });

    it('a tenant key created by the owner works within its scopes, never with a second credential, and stops when revoked', async () => {
      const created = await createKey(tokens.owner, { kind: 'tenant', scopes: ['tools:invoke'] });
      expect(created.status).toBe(201);
      const { apiKey, key } = created.body as KeyAnswer;
      expect(key).toMatch(/^pck_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
      expect(apiKey).toMatchObject({ kind: 'tenant', scopes: ['tools:invoke'] });

      const used = await withKey(key);
      expect(used.status).toBe(200);
      expect((used.body as InvokeBody).output?.echo).toEqual({ hello: 'key' });

      const outOfScope = await httpJson(platform.gatewayUrl, 'GET', '/api/audit/events', {
        host: demo.host,
        headers: { 'x-api-key': key },
      });
      expect(outOfScope.status).toBe(403);
      const both = await invoke(tokens.owner, { 'x-api-key': key });
      expect(both.status).toBe(401);
      expect(both.body.error?.message).toBe('send exactly one credential');
      const mintedByKey = await httpJson(platform.gatewayUrl, 'GET', '/api/api-keys', { host: demo.host, headers: { 'x-api-key': key } });
      expect(mintedByKey.status).toBe(403);

      const listed = await httpJson(platform.gatewayUrl, 'GET', '/api/api-keys', { token: tokens.owner, host: demo.host });
      const entry = (listed.body as { apiKeys: KeyAnswer['apiKey'][] }).apiKeys.find((k) => k.id === apiKey.id);
      expect(entry?.lastUsedAt).toEqual(expect.any(String));
      expect(JSON.stringify(listed.body)).not.toContain(key.slice(21));

      const revoked = await httpJson(platform.gatewayUrl, 'DELETE', `/api/api-keys/${apiKey.id}`, { token: tokens.owner, host: demo.host });
      expect(revoked.status).toBe(204);
      expect((await withKey(key)).status).toBe(401);
    });

    it('rotation: both keys work during the grace period, then only the new one', async () => {
      const { apiKey, key: oldKey } = (await createKey(tokens.owner, { kind: 'tenant', scopes: ['tools:invoke'] })).body as KeyAnswer;
      const rotated = await httpJson(platform.gatewayUrl, 'POST', `/api/api-keys/${apiKey.id}/rotate`, {
        token: tokens.owner,
        host: demo.host,
        body: { graceSeconds: 2 },
      });
      expect(rotated.status).toBe(201);
      const newKey = (rotated.body as KeyAnswer).key;
      expect((await withKey(newKey)).status).toBe(200);
      expect((await withKey(oldKey)).status).toBe(200);
      await pollUntil(async () => ((await withKey(oldKey)).status === 401 ? true : undefined), {
        timeoutMs: 15_000,
        what: 'the rotated-out key to stop working',
      });
      expect((await withKey(newKey)).status).toBe(200);
    });

    it('a tenant key stops acting once its creator loses the capability (demoted admin)', async () => {
      const { gatewayUrl, passwords, seeded } = platform;
      const email = `key-admin-${Date.now()}@alpha.example`;
      const signup = await httpJson(gatewayUrl, 'POST', '/api/auth/signup', {
        body: { email, password: passwords.admin, phone: '+15550100998' },
      });
      expect(signup.status).toBe(201);
      const adminId = (signup.body as { userId: string }).userId;
      const setRole = (role: string) =>
        httpJson(gatewayUrl, 'POST', '/api/members', { token: tokens.owner, body: { userId: adminId, role } });
      expect((await setRole('admin')).status).toBe(201);
      const adminToken = await signIn(gatewayUrl, email, passwords.admin, seeded.tenantId);
      const created = await createKey(adminToken, { kind: 'tenant', scopes: ['tools:invoke'] });
      expect(created.status).toBe(201);
      const { key } = created.body as KeyAnswer;
      expect((await withKey(key)).status).toBe(200);

      expect((await setRole('user')).status).toBe(201);
      const after = await pollUntil(
        async () => {
          const response = await withKey(key);
          return response.status === 200 ? undefined : response;
        },
        { timeoutMs: 5_000, what: "the demotion to reach the key's decisions" },
      );
      expect(after.status).toBe(403);
    });

    it("a user key never exceeds its user's rights or its scopes; a key of another tenant is refused", async () => {
      // A plain user cannot create a tenant key, nor hand a key a capability they do not hold.
      expect((await createKey(tokens.user, { kind: 'tenant', scopes: ['tenant:read'] })).status).toBe(403);
      expect((await createKey(tokens.user, { kind: 'user', scopes: ['tools:invoke'] })).status).toBe(403);
      const created = await createKey(tokens.user, { kind: 'user', scopes: ['tenant:read'] });
      expect(created.status).toBe(201);
      const { key } = created.body as KeyAnswer;
      const context = await httpJson(platform.gatewayUrl, 'GET', '/api/context', { host: demo.host, headers: { 'x-api-key': key } });
      expect(context.status).toBe(200);
      expect((await withKey(key)).status).toBe(403);

      // Created on the platform host, where the tenant comes from the beta owner's token.
      const beta = await httpJson(platform.gatewayUrl, 'POST', '/api/api-keys', {
        token: tokens.beta,
        body: { name: 'e2e', kind: 'tenant', scopes: ['tools:invoke'] },
      });
      expect(beta.status).toBe(201);
      const betaKey = (beta.body as KeyAnswer).key;
      const foreign = await withKey(betaKey);
      expect(foreign.status).toBe(403);
      expect((foreign.body as InvokeBody).error?.code).toBe('CROSS_TENANT');
    });
  });
});
