// Starts every Portcullis process as a child process and waits until each reports ready.
// Used by the local bring-up (up.mjs) and by the end-to-end tests, so both run the platform
// exactly the same way: compiled services (dist/src/main.js), one database per service,
// configuration only through environment variables.
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Default ports; the end-to-end tests pass their own free ones. */
export const defaultPorts = {
  auth: { grpc: 50051, admin: 9051, jwks: 8081 },
  'tenant-registry': { grpc: 50052, admin: 9052 },
  policy: { grpc: 50053, admin: 9053 },
  'tool-gateway': { grpc: 50054, admin: 9054 },
  'device-enrollment': { grpc: 50055, admin: 9055 },
  audit: { grpc: 50056, admin: 9056 },
  'api-gateway': { http: 8080, admin: 9080 },
};

export const serviceNames = /** @type {const} */ ([
  'policy',
  'tenant-registry',
  'auth',
  'audit',
  'tool-gateway',
  'device-enrollment',
  'api-gateway',
]);

/** The identity of operator tooling (this bring-up, tests, benchmarks) for platform-operation RPCs. */
export const operatorName = 'platform-ops';

/** The identity of the platform auditor's tooling: it may read and export any tenant's audit trail. */
export const auditorName = 'platform-auditor';

/**
 * A new Ed25519 service identity key for every service and for the operator: `privateKeys[name]`
 * (PKCS#8 PEM, that process's SERVICE_IDENTITY_KEY) and `trust` (SERVICE_TRUST, every public key
 * as a JWK). Made at start-up, never written to the repository.
 * @param {readonly string[]} [names]
 */
export function generateServiceKeys(names = [...serviceNames, operatorName, auditorName]) {
  /** @type {Record<string, string>} */
  const privateKeys = {};
  /** @type {Record<string, unknown>} */
  const trust = {};
  for (const name of names) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    privateKeys[name] = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    trust[name] = publicKey.export({ format: 'jwk' });
  }
  return { privateKeys, trust: JSON.stringify(trust) };
}

function databaseUrl(pgAdminUrl, database, role) {
  const url = new URL(pgAdminUrl);
  url.username = role;
  url.password = '';
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Environment of every service. `allowedToolTargets` are the only loopback/private `host:port`
 * endpoints the tool gateway may call (the demo tool); `activationCodeSecret` keys the hashes
 * of activation codes (base64 of 32 random bytes); `smsOutboxFile` is where the auth service's
 * development SMS provider writes phone verification codes. `oauth` (optional) configures Google/GitHub
 * sign-in in the auth service (see platform.d.mts) and, since the platform is plain HTTP on loopback,
 * makes the gateway's binding cookie non-Secure. `serviceKeys` (generateServiceKeys) gives each process its
 * service identity and every process the same trust list. `dnsServers` (optional) are the DNS servers
 * tenant-registry asks for domain ownership records (default: the system's). `auditSpoolDir` (optional)
 * gives every service its own audit spool, `<auditSpoolDir>/<service>` (AUDIT_SPOOL_DIR);
 * without it they use their development default under the OS temp dir.
 * @param {{ ports: typeof defaultPorts, pgAdminUrl: string, dbPrefix: string, redisUrl: string, redisKeyPrefix: string,
 *   serviceKeys: ReturnType<typeof generateServiceKeys>, dnsServers?: string[],
 *   natsUrl: string, natsSubjectPrefix: string, signingKeySecret: string, activationCodeSecret: string, smsOutboxFile: string,
 *   allowedToolTargets: string[], otlpEndpoint?: string, logLevel?: string, extra?: Record<string, Record<string, string>>,
 *   oauth?: import('./platform.d.mts').PlatformOAuth, csrfSecret?: string, rateLimits?: object, auditSpoolDir?: string }} options
 */
export function platformEnv(options) {
  const { ports, pgAdminUrl, dbPrefix, redisUrl, redisKeyPrefix, natsUrl, natsSubjectPrefix, signingKeySecret } = options;
  const { activationCodeSecret, allowedToolTargets, smsOutboxFile } = options;
  const address = (name) => `127.0.0.1:${ports[name].grpc}`;
  const common = {
    LOG_LEVEL: options.logLevel ?? 'info',
    LISTEN_HOST: '127.0.0.1',
    NATS_URL: natsUrl,
    NATS_SUBJECT_PREFIX: natsSubjectPrefix,
    ...(options.otlpEndpoint ? { OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint, OTEL_BSP_SCHEDULE_DELAY: '200' } : {}),
  };
  const db = (name) => {
    const database = `${dbPrefix}_${name.replaceAll('-', '_')}`;
    return { DATABASE_URL: databaseUrl(pgAdminUrl, database, `portcullis_${name.replaceAll('-', '_')}`), DATABASE_ADMIN_URL: pgAdminUrl };
  };
  const grpc = (name) => ({ GRPC_PORT: String(ports[name].grpc), ADMIN_PORT: String(ports[name].admin) });
  const env = {
    policy: { ...common, ...grpc('policy'), ...db('policy') },
    'tenant-registry': {
      ...common,
      ...grpc('tenant-registry'),
      ...db('tenant-registry'),
      POLICY_ADDRESS: address('policy'),
      // Names under .localhost always mean this machine: nobody can prove owning them, nor needs to.
      DOMAIN_VERIFICATION_EXEMPT_SUFFIXES: '.localhost',
      ...(options.dnsServers ? { DOMAIN_VERIFICATION_DNS_SERVERS: options.dnsServers.join(',') } : {}),
    },
    auth: {
      ...common,
      ...grpc('auth'),
      ...db('auth'),
      JWKS_PORT: String(ports.auth.jwks),
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: redisKeyPrefix,
      TENANT_REGISTRY_ADDRESS: address('tenant-registry'),
      AUTH_SIGNING_KEY_SECRET: signingKeySecret,
      // Development SMS: codes go to a local file, never to a phone.
      SMS_PROVIDER: 'file',
      SMS_OUTBOX_FILE: smsOutboxFile,
    },
    audit: {
      ...common,
      ...grpc('audit'),
      ...db('audit'),
      // Verifies the token of every robot event.
      AUTH_ADDRESS: address('auth'),
      // Signs the audit chains' checkpoints; made fresh for every run, never stored.
      AUDIT_CHECKPOINT_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    },
    'tool-gateway': {
      ...common,
      ...grpc('tool-gateway'),
      ...db('tool-gateway'),
      TOOL_ALLOWED_PRIVATE_TARGETS: allowedToolTargets.join(','),
    },
    'device-enrollment': {
      ...common,
      ...grpc('device-enrollment'),
      ...db('device-enrollment'),
      ACTIVATION_CODE_SECRET: activationCodeSecret,
    },
    'api-gateway': {
      ...common,
      // The gateway reads the session keys the auth service writes: same Redis, same prefix.
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: redisKeyPrefix,
      HTTP_PORT: String(ports['api-gateway'].http),
      ADMIN_PORT: String(ports['api-gateway'].admin),
      AUTH_ADDRESS: address('auth'),
      AUTH_JWKS_URL: `http://127.0.0.1:${ports.auth.jwks}/.well-known/jwks.json`,
      TENANT_REGISTRY_ADDRESS: address('tenant-registry'),
      POLICY_ADDRESS: address('policy'),
      TOOL_GATEWAY_ADDRESS: address('tool-gateway'),
      DEVICE_ENROLLMENT_ADDRESS: address('device-enrollment'),
      AUDIT_ADDRESS: address('audit'),
      // Cookie sessions' CSRF tokens: the same key for every gateway replica of this platform.
      CSRF_SECRET: options.csrfSecret ?? randomBytes(32).toString('base64'),
      ...(options.rateLimits ? { RATE_LIMITS: JSON.stringify(options.rateLimits) } : {}),
    },
  };
  if (options.oauth) {
    Object.assign(env.auth, oauthEnv(options.oauth));
    env['api-gateway'].COOKIE_SECURE = 'false';
  }
  // Every service gets its own spool directory; those that publish no audit events ignore it.
  if (options.auditSpoolDir) {
    for (const name of serviceNames) env[name].AUDIT_SPOOL_DIR = join(options.auditSpoolDir, name);
  }
  for (const name of serviceNames) {
    Object.assign(env[name], { SERVICE_IDENTITY_KEY: options.serviceKeys.privateKeys[name], SERVICE_TRUST: options.serviceKeys.trust });
  }
  for (const [name, extra] of Object.entries(options.extra ?? {})) Object.assign(env[name], extra);
  return env;
}

/** The auth service's OAuth settings (services/auth/README.md, "Google and GitHub sign-in"). */
function oauthEnv({ redirectBaseUrl, allowInsecureLoopback = false, stateTtlSeconds, google, github }) {
  return {
    OAUTH_REDIRECT_BASE_URL: redirectBaseUrl,
    OAUTH_ALLOW_INSECURE_LOOPBACK: String(allowInsecureLoopback),
    ...(stateTtlSeconds === undefined ? {} : { OAUTH_STATE_TTL_SECONDS: String(stateTtlSeconds) }),
    ...(google
      ? {
          GOOGLE_CLIENT_ID: google.clientId,
          GOOGLE_CLIENT_SECRET: google.clientSecret,
          ...(google.issuer ? { GOOGLE_ISSUER: google.issuer } : {}),
        }
      : {}),
    ...(github
      ? {
          GITHUB_CLIENT_ID: github.clientId,
          GITHUB_CLIENT_SECRET: github.clientSecret,
          ...(github.authorizeUrl ? { GITHUB_AUTHORIZE_URL: github.authorizeUrl } : {}),
          ...(github.tokenUrl ? { GITHUB_TOKEN_URL: github.tokenUrl } : {}),
          ...(github.apiUrl ? { GITHUB_API_URL: github.apiUrl } : {}),
        }
      : {}),
  };
}

async function waitReady(name, adminPort, child, logFile, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with code ${child.exitCode} before becoming ready; last log lines:\n${tail(logFile)}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`${name} was not ready within ${timeoutMs} ms; last log lines:\n${tail(logFile)}`);
}

function tail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * The standard OpenTelemetry settings (OTEL_*) of this process, passed on to every service, so
 * `OTEL_EXPORTER_OTLP_HEADERS=… OTEL_TRACES_SAMPLER=… make up` reaches them. OTEL_SERVICE_NAME is
 * left out: each service names itself. A service's own environment wins over these.
 * @param {NodeJS.ProcessEnv} env
 */
function otelSettingsOf(env) {
  return Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key.startsWith('OTEL_') && key !== 'OTEL_SERVICE_NAME' && value !== undefined),
  );
}

/**
 * Starts one service process (compiled) with its environment; output goes to logDir/<name>.log.
 * @returns {{ name: string, child: import('node:child_process').ChildProcess, logFile: string, stop(): Promise<void> }}
 */
export function startService({ root, name, env, logDir }) {
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  // PORTCULLIS_PROFILE_DIR: every service writes a V8 CPU profile there when it exits (benchmarks).
  const profileDir = process.env.PORTCULLIS_PROFILE_DIR;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name)}`] : [];
  const child = spawn(process.execPath, [...profile, 'dist/src/main.js'], {
    cwd: join(root, 'services', name),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...otelSettingsOf(process.env), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    name,
    child,
    logFile,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Starts every service and waits for all of them to be ready.
 * @param {{ root: string, env: ReturnType<typeof platformEnv>, ports: typeof defaultPorts, logDir: string, readyTimeoutMs?: number }} options
 */
export async function startPlatform({ root, env, ports, logDir, readyTimeoutMs = 60000 }) {
  const running = serviceNames.map((name) => startService({ root, name, env: env[name], logDir }));
  const platform = {
    services: Object.fromEntries(running.map((s) => [s.name, s])),
    /** Stops every service currently in `services`, including any restarted since. */
    async stop() {
      await Promise.all(Object.values(platform.services).map((s) => s.stop()));
    },
  };
  try {
    await Promise.all(running.map((s) => waitReady(s.name, ports[s.name].admin, s.child, s.logFile, readyTimeoutMs)));
  } catch (error) {
    await platform.stop();
    throw error;
  }
  return platform;
}
