// Seeds the demo tenants through the gateway's public API, idempotently: running it again
// against the same databases reuses what exists.
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
export const demo = {
  tenantName: 'Alpha Corp',
  host: 'alpha.localhost',
  assistantName: 'Alpha Assistant',
  toolName: 'echo',
  otherTenantName: 'Beta Labs',
  accounts: {
    owner: 'owner@alpha.example',
    admin: 'admin@alpha.example',
    user: 'user@alpha.example',
    betaOwner: 'owner@beta.example',
  },
  // 555-01xx numbers are reserved for fiction: no real phone ever gets these codes.
  phones: {
    owner: '+12025550101',
    admin: '+12025550102',
    user: '+12025550103',
    betaOwner: '+12025550104',
  },
};

/**
 * One HTTP exchange with the gateway. Uses node:http rather than fetch because the Host
 * header selects the tenant's domain and fetch does not let a caller set it.
 */
export function httpJson(baseUrl, method, path, { body, token, host, headers = {} } = {}) {
  const url = new URL(path, baseUrl);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const sent = { ...(payload ? { 'content-type': 'application/json' } : {}), ...headers };
  if (token) sent.authorization = `Bearer ${token}`;
  if (host) sent.host = host;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: sent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: json });
      });
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.end(payload);
  });
}

/** JSON client for the gateway that fails loudly on unexpected statuses. */
export function gatewayClient(baseUrl) {
  return async function call(method, path, { ok = [200, 201], ...options } = {}) {
    const response = await httpJson(baseUrl, method, path, options);
    if (!ok.includes(response.status)) {
      throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(response.body)}`);
    }
    return response;
  };
}

async function account(call, email, password, phone) {
  await call('POST', '/api/auth/signup', { body: { email, password, phone, displayName: email.split('@')[0] }, ok: [201, 409] });
  const { body } = await call('POST', '/api/auth/login', { body: { email, password } });
  return body;
}

/** The newest code the development SMS provider wrote to the outbox for this phone. */
export async function newestSmsCode(smsOutboxFile, phone) {
  const text = await readFile(smsOutboxFile, 'utf8').catch(() => '');
  const codes = text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((message) => message.phone === phone);
  return codes.at(-1)?.code;
}

/** Verifies the account's phone with the code from the outbox; an already verified phone is left alone. */
async function verifyPhone(call, login, phone, smsOutboxFile) {
  if (login.phoneVerified) return;
  // 429: a code was sent moments ago (an interrupted earlier run); the newest one in the outbox is still it.
  await call('POST', '/api/auth/phone/start', { body: { loginTicket: login.loginTicket }, ok: [200, 429] });
  const code = await newestSmsCode(smsOutboxFile, phone);
  if (!code) throw new Error(`no SMS code for ${phone} in ${smsOutboxFile}`);
  await call('POST', '/api/auth/phone/verify', { body: { loginTicket: login.loginTicket, code } });
}

async function tenantToken(call, { email, password, phone, smsOutboxFile }, tenantName) {
  let login = await account(call, email, password, phone);
  let tenant = login.tenants.find((t) => t.tenantName === tenantName);
  if (!tenant) {
    await verifyPhone(call, login, phone, smsOutboxFile);
    const created = await call('POST', '/api/tenants', { body: { loginTicket: login.loginTicket, name: tenantName } });
    tenant = { tenantId: created.body.tenantId };
  }
  const selected = await call('POST', '/api/auth/select-tenant', { body: { loginTicket: login.loginTicket, tenantId: tenant.tenantId } });
  return { userId: login.userId, tenantId: tenant.tenantId, token: selected.body.accessToken };
}

/**
 * @param {{ gatewayUrl: string, toolUrl: string, passwords: Record<keyof typeof demo.accounts, string>, smsOutboxFile: string }} options
 *   `smsOutboxFile` is the auth service's SMS_OUTBOX_FILE (SMS_PROVIDER=file): the tenant creators'
 *   phone codes are read from it.
 */
export async function seedDemo({ gatewayUrl, toolUrl, passwords, smsOutboxFile }) {
  const call = gatewayClient(gatewayUrl);
  const who = (name) => ({ email: demo.accounts[name], password: passwords[name], phone: demo.phones[name], smsOutboxFile });
  const owner = await tenantToken(call, who('owner'), demo.tenantName);
  const admin = await account(call, demo.accounts.admin, passwords.admin, demo.phones.admin);
  const user = await account(call, demo.accounts.user, passwords.user, demo.phones.user);

  let assistantId;
  const existing = await call('GET', '/api/context', { token: owner.token, host: demo.host, ok: [200, 404] });
  if (existing.status === 200) {
    assistantId = existing.body.assistantId;
  } else {
    const assistant = await call('POST', '/api/assistants', { token: owner.token, body: { name: demo.assistantName } });
    assistantId = assistant.body.assistantId;
    await call('POST', `/api/assistants/${assistantId}/domains`, { token: owner.token, body: { host: demo.host } });
  }
  await call('POST', '/api/members', { token: owner.token, body: { userId: admin.userId, role: 'admin' } });
  await call('POST', '/api/members', { token: owner.token, body: { userId: user.userId, role: 'user' } });
  await call('POST', '/api/tools', {
    token: owner.token,
    host: demo.host,
    body: { name: demo.toolName, description: 'Echoes its JSON input', endpointUrl: toolUrl },
    ok: [201, 409],
  });

  const beta = await tenantToken(call, who('betaOwner'), demo.otherTenantName);
  return {
    tenantId: owner.tenantId,
    assistantId,
    host: demo.host,
    users: { owner: owner.userId, admin: admin.userId, user: user.userId },
    beta: { tenantId: beta.tenantId, userId: beta.userId },
  };
}

/** Signs in and selects a tenant; returns the access token. */
export async function signIn(gatewayUrl, email, password, tenantId) {
  const call = gatewayClient(gatewayUrl);
  const { body } = await call('POST', '/api/auth/login', { body: { email, password } });
  const selected = await call('POST', '/api/auth/select-tenant', { body: { loginTicket: body.loginTicket, tenantId } });
  return selected.body.accessToken;
}
