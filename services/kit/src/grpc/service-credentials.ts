import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { AppError } from '../errors.js';

/**
 * Service credentials: every gRPC call between Portcullis processes carries a short-lived
 * JWT (`typ: svc+jwt`, EdDSA) in `authorization: Bearer …`, signed with the calling
 * service's own key and addressed to the called service (`aud`). Each process holds its
 * private key and the public keys of the services it trusts (SERVICE_TRUST); nothing is
 * fetched at run time, so no service depends on another being up to authenticate.
 *
 * Two kinds of caller come out of a verified token:
 * - a platform service: `iss` = `sub` = a name in the trust list, no tenant claim;
 * - a tenant's own backend: a token with a `tenant_id` claim, which only `auth` may sign
 *   (it issues them in exchange for a tenant API key). Such a caller may only ask about
 *   that tenant, and only on the RPCs that admit tenant callers.
 */

export const SERVICE_TOKEN_TYPE = 'svc+jwt';
/** The only service whose signature makes a tenant-scoped credential. */
export const TENANT_CREDENTIAL_ISSUER = 'auth';
/** The identity of operator tooling (bring-up, tests, benchmarks) for platform-operation RPCs. */
export const PLATFORM_OPS = 'platform-ops';
/** The identity of the platform auditor's tooling: it may read and export every tenant's audit trail, nothing else. */
export const PLATFORM_AUDITOR = 'platform-auditor';
/** Every platform identity: the services and operator tooling. */
export const platformServiceNames = [
  'api-gateway',
  'auth',
  'tenant-registry',
  'policy',
  'tool-gateway',
  'device-enrollment',
  'audit',
  PLATFORM_OPS,
  PLATFORM_AUDITOR,
] as const;
export type PlatformServiceName = (typeof platformServiceNames)[number];

/** Platform service tokens live this long; a caller renews its token a minute before. */
const PLATFORM_TOKEN_TTL_SECONDS = 300;
const RENEW_BEFORE_SECONDS = 60;
/** No service token is accepted for longer than this after it was issued, whatever its exp says. */
const MAX_TOKEN_AGE_SECONDS = 900;
const CLOCK_TOLERANCE_SECONDS = 5;
/** Verified tokens remembered (until they expire), so a call costs a map lookup, not a signature check. */
const MAX_REMEMBERED_TOKENS = 10_000;

export type Caller =
  | { readonly kind: 'platform'; readonly service: string }
  | { readonly kind: 'tenant'; readonly tenantId: string; readonly subject: string };

/** Produces the bearer token a client sends on each call (cached by the identity). */
export type ServiceCredential = () => Promise<string>;

export interface TenantTokenRequest {
  audience: string;
  tenantId: string;
  /** Who the credential stands for, e.g. `apikey:<id>`; recorded as `sub`. */
  subject: string;
  ttlSeconds: number;
}

export interface ServiceIdentity {
  readonly name: string;
  /** The credential for calls to the service named `audience`. */
  credentialFor(audience: string): ServiceCredential;
  /** Signs a tenant-scoped credential; only auth's signature is accepted for those. */
  issueTenantToken(request: TenantTokenRequest): Promise<{ token: string; expiresAt: Date }>;
  /** Verifies a bearer token presented to this service; UNAUTHENTICATED when it is not acceptable. */
  verify(token: string): Promise<Caller>;
}

export interface ServiceIdentityOptions {
  name: string;
  privateKey: KeyObject;
  /** Service name → its public key(s) (more than one while a key is being rotated). */
  trust: ReadonlyMap<string, readonly KeyObject[]>;
  now?: () => number;
}

const serviceName = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'service names are lower-case letters, digits and dashes');
const tenantId = z.uuid();

const rejected = () => new AppError('UNAUTHENTICATED', 'service credential rejected');

/** Parses an argument, refusing it as INVALID_ARGUMENT (a caller's mistake, not an internal error). */
function argument<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (!result.success)
    throw new AppError('INVALID_ARGUMENT', `${field}: ${result.error.issues[0]?.message ?? 'invalid'}`, { details: { field } });
  return result.data;
}

export function createServiceIdentity({ name, privateKey, trust, now = Date.now }: ServiceIdentityOptions): ServiceIdentity {
  argument(serviceName, name, 'name');
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new AppError('INVALID_CONFIG', 'the service identity key must be an Ed25519 private key');
  }
  const issued = new Map<string, { token: Promise<string>; renewAtMs: number }>();
  const remembered = new Map<string, { caller: Caller; expiresAtMs: number }>();

  async function sign(claims: Record<string, unknown>, audience: string, subject: string, ttlSeconds: number) {
    const issuedAt = Math.floor(now() / 1000);
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', typ: SERVICE_TOKEN_TYPE })
      .setIssuer(name)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + ttlSeconds)
      .setJti(randomUUID())
      .sign(privateKey);
    return { token, expiresAt: new Date((issuedAt + ttlSeconds) * 1000) };
  }

  function remember(token: string, caller: Caller, expiresAtMs: number) {
    if (remembered.size >= MAX_REMEMBERED_TOKENS) {
      const oldest = remembered.keys().next();
      if (!oldest.done) remembered.delete(oldest.value);
    }
    remembered.set(token, { caller, expiresAtMs });
  }

  async function verifyWithTrust(token: string): Promise<{ caller: Caller; expiresAtMs: number }> {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw rejected();
    }
    const keys = typeof issuer === 'string' ? trust.get(issuer) : undefined;
    if (!keys || typeof issuer !== 'string') throw rejected();
    for (const key of keys) {
      try {
        const { payload } = await jwtVerify(token, key, {
          typ: SERVICE_TOKEN_TYPE,
          algorithms: ['EdDSA'],
          issuer,
          audience: name,
          requiredClaims: ['sub', 'iat', 'exp'],
          maxTokenAge: MAX_TOKEN_AGE_SECONDS,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          currentDate: new Date(now()),
        });
        // Remembered no longer than the age limit either, whatever exp the signer chose.
        const expiresAtMs = Math.min(payload.exp ?? 0, (payload.iat ?? 0) + MAX_TOKEN_AGE_SECONDS) * 1000;
        const claimedTenant = payload['tenant_id'];
        if (claimedTenant === undefined) {
          if (payload.sub !== issuer) throw rejected();
          return { caller: { kind: 'platform', service: issuer }, expiresAtMs };
        }
        if (issuer !== TENANT_CREDENTIAL_ISSUER || !tenantId.safeParse(claimedTenant).success || typeof payload.sub !== 'string') {
          throw rejected();
        }
        return { caller: { kind: 'tenant', tenantId: claimedTenant as string, subject: payload.sub }, expiresAtMs };
      } catch (error) {
        if (error instanceof AppError) throw error;
        // Try the next key of this issuer (rotation); none left means the token is not acceptable.
      }
    }
    throw rejected();
  }

  return {
    name,
    credentialFor(audience) {
      argument(serviceName, audience, 'audience');
      return () => {
        const cached = issued.get(audience);
        if (cached && cached.renewAtMs > now()) return cached.token;
        const token = sign({}, audience, name, PLATFORM_TOKEN_TTL_SECONDS).then(({ token: signed }) => signed);
        issued.set(audience, { token, renewAtMs: now() + (PLATFORM_TOKEN_TTL_SECONDS - RENEW_BEFORE_SECONDS) * 1000 });
        token.catch(() => issued.delete(audience));
        return token;
      };
    },
    async issueTenantToken({ audience, tenantId: tenant, subject, ttlSeconds }) {
      if (name !== TENANT_CREDENTIAL_ISSUER) {
        throw new AppError('PERMISSION_DENIED', `only ${TENANT_CREDENTIAL_ISSUER} issues tenant credentials`);
      }
      argument(serviceName, audience, 'audience');
      argument(tenantId, tenant, 'tenantId');
      if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_AGE_SECONDS) {
        throw new AppError('INVALID_ARGUMENT', `a tenant credential lives 1 to ${MAX_TOKEN_AGE_SECONDS} seconds`);
      }
      return sign({ tenant_id: tenant }, audience, subject, ttlSeconds);
    },
    async verify(token) {
      const cached = remembered.get(token);
      if (cached) {
        if (cached.expiresAtMs + CLOCK_TOLERANCE_SECONDS * 1000 > now()) return cached.caller;
        remembered.delete(token);
      }
      const { caller, expiresAtMs } = await verifyWithTrust(token);
      remember(token, caller, expiresAtMs);
      return caller;
    },
  };
}

/** A new Ed25519 key pair: the private key as PKCS#8 PEM (SERVICE_IDENTITY_KEY) and the public one as a JWK (for SERVICE_TRUST). */
export function generateServiceKeyPair(): { privateKeyPem: string; publicJwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicJwk: publicKey.export({ format: 'jwk' }),
  };
}

const ed25519PublicJwk = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string().min(1) });

/**
 * SERVICE_IDENTITY_KEY: this service's Ed25519 private key (PKCS#8 PEM).
 * SERVICE_TRUST: JSON object, service name → public JWK or list of JWKs, of every service
 * whose calls this one accepts (and `auth`, whose signature makes tenant credentials).
 */
export const serviceIdentityConfigSchema = z.object({
  SERVICE_IDENTITY_KEY: z.string().transform((pem, ctx) => {
    try {
      const key = createPrivateKey(pem);
      if (key.asymmetricKeyType === 'ed25519') return key;
    } catch {
      // reported below, without repeating the value
    }
    ctx.addIssue({ code: 'custom', message: 'must be an Ed25519 private key in PKCS#8 PEM' });
    return z.NEVER;
  }),
  SERVICE_TRUST: z.string().transform((text, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON: {"<service>": <Ed25519 public JWK or list of them>}' });
      return z.NEVER;
    }
    const shape = z.record(serviceName, z.union([ed25519PublicJwk, z.array(ed25519PublicJwk).min(1)])).safeParse(parsed);
    if (!shape.success) {
      ctx.addIssue({ code: 'custom', message: `must map service names to Ed25519 public JWKs: ${shape.error.issues[0]?.message ?? ''}` });
      return z.NEVER;
    }
    const trust = new Map<string, KeyObject[]>();
    for (const [service, jwks] of Object.entries(shape.data)) {
      try {
        trust.set(
          service,
          (Array.isArray(jwks) ? jwks : [jwks]).map((jwk) => createPublicKey({ key: jwk, format: 'jwk' })),
        );
      } catch {
        ctx.addIssue({ code: 'custom', message: `the public key of ${service} is not a valid Ed25519 JWK` });
        return z.NEVER;
      }
    }
    return trust;
  }),
});

/** Who may call an RPC: any trusted platform service or only some, and whether tenant credentials are admitted. */
export interface CallerRule {
  readonly platform: 'any' | readonly string[];
  readonly tenants: boolean;
}

export const anyPlatformService: CallerRule = { platform: 'any', tenants: false };
/** Platform services, and tenant backends asking about their own tenant (the handler checks which tenant). */
export const platformServiceOrTenant: CallerRule = { platform: 'any', tenants: true };
export function onlyServices(...names: string[]): CallerRule {
  return { platform: names, tenants: false };
}

export function admits(rule: CallerRule, caller: Caller): boolean {
  if (caller.kind === 'tenant') return rule.tenants;
  return rule.platform === 'any' || rule.platform.includes(caller.service);
}

/** A tenant caller may only name its own tenant; platform services may name any. */
export function requireCallerTenant(caller: Caller, tenantId: string): void {
  if (caller.kind === 'tenant' && caller.tenantId !== tenantId) {
    throw new AppError('CROSS_TENANT', 'this credential is for another tenant');
  }
}

/**
 * Identities for `names` that all trust one another, made in one process: for tests and
 * benchmarks that run services in-process. A deployment gives each process its own key
 * (SERVICE_IDENTITY_KEY) and the others' public keys (SERVICE_TRUST).
 */
export function createTrustedIdentities<N extends string = PlatformServiceName>(
  names: readonly N[] = platformServiceNames as unknown as readonly N[],
): Record<N, ServiceIdentity> {
  const pairs = names.map((name) => ({ name, ...generateKeyPairSync('ed25519') }));
  const trust = new Map(pairs.map(({ name, publicKey }) => [name as string, [publicKey]]));
  return Object.fromEntries(pairs.map(({ name, privateKey }) => [name, createServiceIdentity({ name, privateKey, trust })])) as Record<
    N,
    ServiceIdentity
  >;
}

/** SERVICE_IDENTITY_KEY and SERVICE_TRUST for one process with a fresh key, trusting only itself: for tests of configuration. */
export function generateServiceIdentityEnv(name: string): { SERVICE_IDENTITY_KEY: string; SERVICE_TRUST: string } {
  const { privateKeyPem, publicJwk } = generateServiceKeyPair();
  return { SERVICE_IDENTITY_KEY: privateKeyPem, SERVICE_TRUST: JSON.stringify({ [name]: publicJwk }) };
}
