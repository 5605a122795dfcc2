import type { ChildProcess } from 'node:child_process';

export type ServiceName = 'policy' | 'tenant-registry' | 'auth' | 'audit' | 'tool-gateway' | 'device-enrollment' | 'api-gateway';

export interface Ports {
  auth: { grpc: number; admin: number; jwks: number };
  'tenant-registry': { grpc: number; admin: number };
  policy: { grpc: number; admin: number };
  'tool-gateway': { grpc: number; admin: number };
  'device-enrollment': { grpc: number; admin: number };
  audit: { grpc: number; admin: number };
  'api-gateway': { http: number; admin: number };
}

export declare const defaultPorts: Ports;
export declare const serviceNames: readonly ServiceName[];

export type PlatformEnv = Record<ServiceName, Record<string, string>>;

/** The identity of operator tooling (bring-up, tests, benchmarks) for platform-operation RPCs. */
export declare const operatorName: 'platform-ops';
export declare const auditorName: 'platform-auditor';

/** Service identity keys: each process's private key (PKCS#8 PEM) and the shared trust list (JSON of public JWKs). */
export interface ServiceKeys {
  privateKeys: Record<string, string>;
  trust: string;
}

/** A new Ed25519 key for every service and the operator (or for `names`). */
export declare function generateServiceKeys(names?: readonly string[]): ServiceKeys;

/** Google/GitHub sign-in for the auth service; a provider is enabled when it is given. */
export interface PlatformOAuth {
  /** The gateway's public base URL (callbacks are `<base>/api/auth/oauth/<provider>/callback`). */
  redirectBaseUrl: string;
  /** Lets provider endpoints be plain http:// on loopback (local providers in tests). */
  allowInsecureLoopback?: boolean;
  stateTtlSeconds?: number;
  google?: { clientId: string; clientSecret: string; issuer?: string };
  github?: { clientId: string; clientSecret: string; authorizeUrl?: string; tokenUrl?: string; apiUrl?: string };
}

export declare function platformEnv(options: {
  ports: Ports;
  pgAdminUrl: string;
  dbPrefix: string;
  redisUrl: string;
  redisKeyPrefix: string;
  natsUrl: string;
  natsSubjectPrefix: string;
  /** Each process's service identity and the trust list (generateServiceKeys). */
  serviceKeys: ServiceKeys;
  /** DNS servers (`ip:port`) tenant-registry asks for domain ownership TXT records; default: the system's. */
  dnsServers?: string[];
  signingKeySecret: string;
  /** Base64 of 32 random bytes: the key activation codes are hashed with. */
  activationCodeSecret: string;
  /** Where the auth service's development SMS provider (SMS_PROVIDER=file) appends phone codes. */
  smsOutboxFile: string;
  /** `host:port` entries the tool gateway may call although they are loopback/private. */
  allowedToolTargets: string[];
  otlpEndpoint?: string;
  logLevel?: string;
  extra?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Google/GitHub sign-in; also makes the gateway's cookies non-Secure (the platform is plain HTTP). */
  oauth?: PlatformOAuth;
  /** The gateway's CSRF_SECRET (base64 of 32 bytes); a new one when absent. */
  csrfSecret?: string;
  /** The gateway's RATE_LIMITS (services/api-gateway/src/libraries/rate-limit-config.ts); its defaults when absent. */
  rateLimits?: object;
  /** Each service's audit spool, `<auditSpoolDir>/<service>` (AUDIT_SPOOL_DIR); their OS-temp-dir defaults when absent. */
  auditSpoolDir?: string;
}): PlatformEnv;

export interface RunningService {
  name: ServiceName;
  child: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

export declare function startService(options: {
  root: string;
  name: ServiceName;
  env: Record<string, string>;
  logDir: string;
}): RunningService;

export interface Platform {
  services: Record<ServiceName, RunningService>;
  stop(): Promise<void>;
}

export declare function startPlatform(options: {
  root: string;
  env: PlatformEnv;
  ports: Ports;
  logDir: string;
  readyTimeoutMs?: number;
}): Promise<Platform>;
