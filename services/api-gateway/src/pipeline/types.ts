import type { AppError } from '@portcullis/kit';
import type { Principal } from '@portcullis/proto/common';
import type { SensitiveRouteClass } from '../libraries/rate-limit-config.js';
import type { RateLimitState } from '../libraries/rate-limiter.js';

/** What the gateway knows about a request before any step has run. */
export interface RequestInfo {
  requestId: string;
  /** Host name without port, lowercased. */
  host: string;
  /** Value of the X-Assistant-Id header, if sent. */
  assistantId: string | undefined;
  /** Value of the Authorization header, if sent. */
  authorization: string | undefined;
  /** Value of the X-API-Key header, if sent. */
  apiKey: string | undefined;
  /** The access token of the cookie session, if the request carries that cookie. */
  sessionCookie: string | undefined;
  /** Value of the X-CSRF-Token header, if sent (checked for cookie sessions). */
  csrfToken: string | undefined;
  /** Whether the method may change state (anything but GET, HEAD and OPTIONS). */
  changesState: boolean;
  /** Address of the connecting client (the gateway does not trust forwarding headers). */
  clientIp: string;
  userAgent: string;
}

/**
 * How the principal proved itself, for routes that act on the credential itself (logout) and
 * for routes only a signed-in person may use (`humansOnly`: anything but an access token is refused).
 */
export type Credential =
  | {
      kind: 'access_token';
      sessionId: string;
      /** Where the token came from: an Authorization header, or the cookie session (CSRF-checked). */
      via: 'header' | 'cookie';
    }
  | {
      kind: 'api_key';
      keyId: string;
      /**
       * `tenant`: within its scopes and its creator's current rights. `user`: acts as userId,
       * within its scopes and the user's current rights.
       */
      keyKind: 'tenant' | 'user';
      /** The user a `user` key acts as; empty for `tenant` keys. */
      userId: string;
      /** Who created (or last rotated) the key. */
      createdBy: string;
      scopes: readonly string[];
    }
  | {
      kind: 'robot';
      robotId: string;
      /** The person whose current rights cap the robot (the policy checks them at every request). */
      creatorId: string;
      /** The robot's teams its creator still holds, as the auth service answered for this request. */
      teamIds: readonly string[];
    };

/** A capability the caller must hold: a policy object and action, e.g. tools:invoke. */
export interface Capability {
  object: string;
  action: string;
}

/** What a protected route asks of the pipeline besides its capability. */
export interface RouteConditions {
  /** A stricter limit on top of the plan's, for routes attackers hammer (activation-code entry). */
  sensitive?: SensitiveRouteClass | undefined;
  /** Only a signed-in person (access token) may call it: API keys and robots are denied. */
  humansOnly?: boolean | undefined;
  /** The route acts on one assistant, so the context must name one. */
  needsAssistant?: boolean | undefined;
}

/** What a protected route asks of the pipeline. */
export interface RouteRequirement extends RouteConditions {
  capability: Capability;
}

export interface TenantTarget {
  tenantId: string;
  tenantName: string;
  /** The tenant's plan (tier); its rate limits apply. */
  plan: string;
  /** Empty when the request is tenant-wide (no assistant in the context). */
  assistantId: string;
}

declare const resolved: unique symbol;
declare const authenticated: unique symbol;
declare const rateLimited: unique symbol;
declare const authorized: unique symbol;

/**
 * Step 1 output. `target` is undefined on a platform host: the tenant is then taken from
 * the credential in step 2 and confirmed with the registry there.
 */
export interface ResolvedContext {
  readonly request: RequestInfo;
  readonly target: TenantTarget | undefined;
  /**
   * The registry's refusal of an assistant named by X-Assistant-Id (NOT_FOUND, TENANT_SUSPENDED),
   * held back until step 2 has authenticated the caller: whether an assistant id exists must not
   * show to a caller without a credential of its tenant.
   */
  readonly assistantRefusal?: AppError;
  readonly [resolved]: true;
}

/** Step 2 output: one verified principal, of the same tenant as the target. */
export interface AuthenticatedContext {
  readonly request: RequestInfo;
  readonly target: TenantTarget;
  readonly principal: Principal;
  readonly credential: Credential;
  readonly [resolved]: true;
  readonly [authenticated]: true;
}

/** Step 3 output: the request spent a point from each of its buckets and none is exhausted. */
export interface RateLimitedContext {
  readonly request: RequestInfo;
  readonly target: TenantTarget;
  readonly principal: Principal;
  readonly credential: Credential;
  /** The most constrained bucket after this request, for the `RateLimit-*` headers. */
  readonly rateLimit: RateLimitState;
  readonly [resolved]: true;
  readonly [authenticated]: true;
  readonly [rateLimited]: true;
}

/**
 * Step 4 output, and the only context a protected route handler accepts: it can exist only
 * when every step of the pipeline ran and allowed the request.
 */
export interface AuthorizedContext {
  readonly request: RequestInfo;
  readonly target: TenantTarget;
  readonly principal: Principal;
  readonly credential: Credential;
  readonly capability: Capability;
  readonly rateLimit: RateLimitState;
  readonly [resolved]: true;
  readonly [authenticated]: true;
  readonly [rateLimited]: true;
  readonly [authorized]: true;
}
