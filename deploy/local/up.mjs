// Local bring-up: finds (or starts) Postgres, Redis and NATS, starts every service and the
// demo tool, seeds the demo tenants, checks the flow end to end and prints how to use it.
// Ctrl-C stops everything this script started, and nothing else.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { startDemoTool } from './demo-tool.mjs';
import { defaultPorts, generateServiceKeys, operatorName, platformEnv, serviceNames, startPlatform } from './platform.mjs';
import { demo, httpJson, seedDemo, signIn } from './seed.mjs';

const root = new URL('../..', import.meta.url).pathname;
const stateDir = join(root, '.portcullis');
// Development SMS provider: phone verification codes are appended here (never sent to a phone).
const smsOutboxFile = join(stateDir, 'sms-outbox.jsonl');
const logDir = join(stateDir, 'logs');
const pgAdminUrl = process.env.PORTCULLIS_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const toolPort = Number(process.env.PORTCULLIS_DEMO_TOOL_PORT ?? 7070);
const gatewayUrl = `http://127.0.0.1:${defaultPorts['api-gateway'].http}`;
const started = []; // { name, stop() } of everything this script started, in order

function log(message) {
  process.stdout.write(`[portcullis] ${message}\n`);
}

function reachable(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

async function waitFor(port, name, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await reachable(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${name} did not start listening on 127.0.0.1:${port}`);
}

function onPath(binary) {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

function spawnInfra(name, command, args) {
  mkdirSync(logDir, { recursive: true });
  const child = spawn(command, args, { stdio: 'ignore' });
  started.push({
    name,
    stop: () => new Promise((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', resolve), child.kill('SIGTERM')))),
  });
  return child;
}

const installHint = 'sudo apt-get update && sudo apt-get install -y postgresql redis-server nats-server';

async function ensureInfrastructure() {
  if (!(await reachable(5432))) {
    if (!onPath('pg_ctlcluster') || !existsSync('/etc/postgresql'))
      throw new Error(`PostgreSQL is not running on 127.0.0.1:5432 and is not installed. Install it: ${installHint}`);
    const version = readdirSync('/etc/postgresql')[0];
    log(`starting PostgreSQL ${version} (pg_ctlcluster)`);
    const run = (action) => spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', action], { stdio: 'inherit' });
    if (run('start').status !== 0) throw new Error('pg_ctlcluster could not start PostgreSQL');
    started.push({ name: 'postgres', stop: async () => void run('stop') });
    await waitFor(5432, 'PostgreSQL');
  }
  if (!(await reachable(6379))) {
    if (!onPath('redis-server')) throw new Error(`Redis is not running on 127.0.0.1:6379 and is not installed. Install it: ${installHint}`);
    log('starting Redis');
    spawnInfra('redis', 'redis-server', ['--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
    await waitFor(6379, 'Redis');
  }
  if (!(await reachable(4222))) {
    const natsServer = ['nats-server', '/usr/sbin/nats-server'].find((b) => onPath(b) || existsSync(b));
    if (!natsServer) throw new Error(`NATS is not running on 127.0.0.1:4222 and is not installed. Install it: ${installHint}`);
    log('starting NATS with JetStream');
    mkdirSync(join(stateDir, 'nats'), { recursive: true });
    spawnInfra('nats', natsServer, ['-a', '127.0.0.1', '-p', '4222', '-js', '-sd', join(stateDir, 'nats')]);
    await waitFor(4222, 'NATS');
  }
  log('infrastructure: PostgreSQL :5432, Redis :6379, NATS/JetStream :4222');
}

const dbPrefix = 'portcullis';

/**
 * Development secrets, generated once per checkout and never committed (.portcullis/ is ignored).
 * The local databases belong to them: accounts were created with these passwords and signing keys
 * are encrypted with this secret. New secrets therefore start from fresh local databases. A secret
 * added after the file was written (the activation-code key) is generated into it in place: a
 * new one only retires the activation codes that are live at that moment.
 */
async function devSecrets() {
  const file = join(stateDir, 'dev-secrets.json');
  const key = () => randomBytes(32).toString('base64');
  if (existsSync(file)) {
    const secrets = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof secrets.activationCodeSecret !== 'string') {
      secrets.activationCodeSecret = key();
      writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
      log(`added an activation-code secret to ${file}`);
    }
    return secrets;
  }
  await dropDevDatabases();
  const password = () => `${randomBytes(12).toString('base64url')}-Pc1`;
  const secrets = {
    signingKeySecret: key(),
    activationCodeSecret: key(),
    passwords: { owner: password(), admin: password(), user: password(), betaOwner: password() },
  };
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

async function dropDevDatabases() {
  const { hostname } = new URL(pgAdminUrl);
  if (!['127.0.0.1', 'localhost', '[::1]', '::1', ''].includes(hostname)) {
    throw new Error(`refusing to reset databases on ${hostname}: the local bring-up only resets a loopback PostgreSQL`);
  }
  const client = new pg.Client({ connectionString: pgAdminUrl });
  await client.connect();
  try {
    for (const name of serviceNames) {
      const database = `${dbPrefix}_${name.replaceAll('-', '_')}`;
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (rowCount) {
        log(`resetting ${database}: it was made with development secrets this checkout no longer has`);
        await client.query(`DROP DATABASE "${database}" WITH (FORCE)`);
      }
    }
  } finally {
    await client.end();
  }
}

async function stopAll() {
  for (const item of [...started].reverse()) {
    try {
      await item.stop();
    } catch (error) {
      log(`could not stop ${item.name}: ${error.message}`);
    }
  }
}

function printUsage(seeded, passwords) {
  const g = gatewayUrl;
  const h = `-H 'Host: ${demo.host}'`;
  const j = `node -pe "JSON.parse(require('fs').readFileSync(0,'utf8'))`;
  const login = (email, password, tenantId) =>
    `$(curl -s ${g}/api/auth/select-tenant -H 'content-type: application/json' -d "{\\"tenantId\\":\\"${tenantId}\\",\\"loginTicket\\":\\"$(curl -s ${g}/api/auth/login -H 'content-type: application/json' -d '{"email":"${email}","password":"${password}"}' | ${j}.loginTicket")\\"}" | ${j}.accessToken")`;
  process.stdout.write(`
Portcullis is running.
  Gateway:        ${g}   (tenant domain "${demo.host}": send -H 'Host: ${demo.host}')
  Demo tenant:    ${demo.tenantName} (${seeded.tenantId}), assistant ${seeded.assistantId}
  Accounts:       owner  ${demo.accounts.owner} / ${passwords.owner}
                  admin  ${demo.accounts.admin} / ${passwords.admin}
                  user   ${demo.accounts.user} / ${passwords.user}
                  other tenant (${demo.otherTenantName}) owner ${demo.accounts.betaOwner} / ${passwords.betaOwner}
  Logs:           ${logDir}/<service>.log      Secrets: ${join(stateDir, 'dev-secrets.json')}
  SMS codes:      ${smsOutboxFile}   (development SMS provider: phone verification codes land here)
  API reference:  ${g}/api/openapi.json   (OpenAPI 3.1; every answer carries RateLimit-* headers)

Copy-paste (bash):

  # 1. Sign in (login returns a single-use ticket + your tenants), 2. select the tenant -> access token
  curl -s ${g}/api/auth/login -H 'content-type: application/json' -d '{"email":"${demo.accounts.owner}","password":"${passwords.owner}"}'; echo
  OWNER=${login(demo.accounts.owner, passwords.owner, seeded.tenantId)}

  # 3. The owner invokes the demo tool (200)
  curl -s -w ' -> %{http_code}\\n' ${g}/api/tools/${demo.toolName}/invoke ${h} -H "authorization: Bearer $OWNER" -H 'content-type: application/json' -d '{"input":{"hello":"world"}}'

  # A user without the tools:invoke capability (403)
  USER_TOKEN=${login(demo.accounts.user, passwords.user, seeded.tenantId)}
  curl -s -w ' -> %{http_code}\\n' ${g}/api/tools/${demo.toolName}/invoke ${h} -H "authorization: Bearer $USER_TOKEN" -H 'content-type: application/json' -d '{"input":{}}'

  # A token of another tenant on Alpha's domain (403)
  BETA=${login(demo.accounts.betaOwner, passwords.betaOwner, seeded.beta.tenantId)}
  curl -s -w ' -> %{http_code}\\n' ${g}/api/tools/${demo.toolName}/invoke ${h} -H "authorization: Bearer $BETA" -H 'content-type: application/json' -d '{"input":{}}'

  # 4. Every one of those decisions in the audit trail
  curl -s "${g}/api/audit/events?pageSize=10" ${h} -H "authorization: Bearer $OWNER"; echo

Ctrl-C stops everything this command started.
`);
}

/** Runs the printed flow once, so a broken bring-up fails here rather than in the reader's shell. */
async function smokeCheck(seeded, passwords) {
  const owner = await signIn(gatewayUrl, demo.accounts.owner, passwords.owner, seeded.tenantId);
  const user = await signIn(gatewayUrl, demo.accounts.user, passwords.user, seeded.tenantId);
  const beta = await signIn(gatewayUrl, demo.accounts.betaOwner, passwords.betaOwner, seeded.beta.tenantId);
  const invoke = (token) =>
    httpJson(gatewayUrl, 'POST', `/api/tools/${demo.toolName}/invoke`, { token, host: demo.host, body: { input: { hello: 'world' } } });
  const results = { owner: (await invoke(owner)).status, user: (await invoke(user)).status, otherTenant: (await invoke(beta)).status };
  const audit = await httpJson(gatewayUrl, 'GET', '/api/audit/events?pageSize=20', { token: owner, host: demo.host });
  if (results.owner !== 200 || results.user !== 403 || results.otherTenant !== 403 || audit.status !== 200) {
    throw new Error(`smoke check failed: ${JSON.stringify({ ...results, audit: audit.status })}`);
  }
  log(
    `smoke check: owner invoke ${results.owner}, user invoke ${results.user}, other tenant ${results.otherTenant}, audit list ${audit.status}`,
  );
}

process.once('SIGINT', () => void stopAll().then(() => process.exit(0)));
process.once('SIGTERM', () => void stopAll().then(() => process.exit(0)));

try {
  for (const name of serviceNames) {
    if (!existsSync(join(root, 'services', name, 'dist/src/main.js')))
      throw new Error(`services/${name} is not built: run "make up" (it installs and builds first)`);
  }
  await ensureInfrastructure();
  const secrets = await devSecrets();
  const tool = await startDemoTool({ port: toolPort });
  started.push({ name: 'demo tool', stop: () => tool.close() });
  log(`demo tool listening on ${tool.url}`);
  // Service identity keys are new on every start; the operator's private key is kept (0600) for
  // platform-operation calls (tenant status, plan) made with `createServiceIdentity` from the kit.
  const serviceKeys = generateServiceKeys();
  writeFileSync(join(stateDir, `${operatorName}.key`), serviceKeys.privateKeys[operatorName], { mode: 0o600 });
  const env = platformEnv({
    serviceKeys,
    ports: defaultPorts,
    pgAdminUrl,
    dbPrefix,
    redisUrl: 'redis://127.0.0.1:6379',
    redisKeyPrefix: 'portcullis:',
    natsUrl: 'nats://127.0.0.1:4222',
    natsSubjectPrefix: '',
    signingKeySecret: secrets.signingKeySecret,
    activationCodeSecret: secrets.activationCodeSecret,
    smsOutboxFile,
    // The demo tool on loopback is the one private endpoint the tool gateway may call.
    allowedToolTargets: [`127.0.0.1:${new URL(tool.url).port || '80'}`],
    // Audit events that cannot reach NATS wait here (one folder per service) and survive a restart.
    auditSpoolDir: join(stateDir, 'audit-spool'),
    ...(process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT } : {}),
  });
  log('starting services: ' + serviceNames.join(', '));
  const platform = await startPlatform({ root, env, ports: defaultPorts, logDir });
  started.push({ name: 'services', stop: () => platform.stop() });
  log('all seven services are ready');
  const seeded = await seedDemo({ gatewayUrl, toolUrl: tool.url, passwords: secrets.passwords, smsOutboxFile });
  await smokeCheck(seeded, secrets.passwords);
  printUsage(seeded, secrets.passwords);
  if (process.env.PORTCULLIS_UP_EXIT_AFTER_START === '1') {
    await stopAll();
    process.exit(0);
  }
} catch (error) {
  log(`bring-up failed: ${error.message}`);
  await stopAll();
  process.exit(1);
}
