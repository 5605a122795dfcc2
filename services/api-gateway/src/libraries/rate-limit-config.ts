import { z } from '@portcullis/kit';

/** One fixed window: at most `points` requests per `windowSeconds`. */
const windowSchema = z.strictObject({
  points: z.number().int().positive().max(10_000_000),
  windowSeconds: z.number().int().positive().max(86_400),
});

export type RateWindow = z.infer<typeof windowSchema>;

/** The buckets every protected request spends from, per tenant plan. */
const planLimitsSchema = z.strictObject({
  /** Every request of the tenant, whoever makes it. */
  tenant: windowSchema,
  /** Per signed-in person (access token, cookie session). */
  user: windowSchema,
  /** Per API key. */
  apiKey: windowSchema,
  /** Per robot token. */
  robot: windowSchema,
  /** Per device credential. */
  device: windowSchema,
});

export type PlanLimits = z.infer<typeof planLimitsSchema>;

/**
 * Stricter limits for the routes attackers hammer, counted per client address (and, for
 * activation-code entry, also per person and per tenant).
 */
const sensitiveLimitsSchema = z.strictObject({
  /** Sign-up, login, tenant selection, refresh, tenant creation. */
  signIn: windowSchema,
  /** Sending and confirming SMS codes. */
  sms: windowSchema,
  /** Google/GitHub sign-in start and callback. */
  oauth: windowSchema,
  /** Starting a device activation (a public route). */
  activationStart: windowSchema,
  /** Entering an activation code (binding a device), per client address and per person. */
  activationCode: windowSchema,
  /**
   * API keys and robot tokens the auth service refused, per client address: beyond it, that
   * address's API keys and robot tokens are refused before the auth service is asked.
   */
  failedAuth: windowSchema,
  /** Exporting or verifying a whole audit trail (reads every record), per person and per client address. */
  auditExport: windowSchema,
});

export type SensitiveRouteClass = keyof z.infer<typeof sensitiveLimitsSchema>;

export const rateLimitsSchema = z.strictObject({
  /** Limits of each plan, by plan name (policies/plans.csv). */
  plans: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/), planLimitsSchema),
  /** Used for a tenant whose plan has no entry in `plans`. */
  defaultPlan: z.string(),
  sensitive: sensitiveLimitsSchema,
});

export type RateLimits = z.infer<typeof rateLimitsSchema>;

const perMinute = (points: number): RateWindow => ({ points, windowSeconds: 60 });

/** The defaults `RATE_LIMITS` overrides (each top-level key replaced as a whole when given). */
export const defaultRateLimits: RateLimits = {
  plans: {
    free: { tenant: perMinute(1_200), user: perMinute(300), apiKey: perMinute(300), robot: perMinute(300), device: perMinute(120) },
    pro: { tenant: perMinute(12_000), user: perMinute(1_200), apiKey: perMinute(3_000), robot: perMinute(3_000), device: perMinute(600) },
    enterprise: {
      tenant: perMinute(60_000),
      user: perMinute(3_000),
      apiKey: perMinute(12_000),
      robot: perMinute(12_000),
      device: perMinute(1_200),
    },
  },
  defaultPlan: 'free',
  sensitive: {
    signIn: perMinute(30),
    sms: { points: 10, windowSeconds: 600 },
    oauth: perMinute(20),
    activationStart: perMinute(10),
    activationCode: { points: 10, windowSeconds: 600 },
    failedAuth: perMinute(60),
    auditExport: perMinute(6),
  },
};

/**
 * `RATE_LIMITS`: JSON with any of `plans`, `defaultPlan`, `sensitive`. `plans` and `defaultPlan`
 * replace their defaults; `sensitive` entries replace theirs one by one. Refused (start-up fails)
 * when malformed or when `defaultPlan` has no limits.
 */
export const rateLimitsConfigSchema = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return defaultRateLimits;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON' });
      return z.NEVER;
    }
    const given = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    const sensitive = typeof given['sensitive'] === 'object' && given['sensitive'] !== null ? given['sensitive'] : {};
    const merged = rateLimitsSchema.safeParse({
      ...defaultRateLimits,
      ...given,
      sensitive: { ...defaultRateLimits.sensitive, ...sensitive },
    });
    if (!merged.success) {
      const issue = merged.error.issues[0];
      ctx.addIssue({ code: 'custom', message: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` });
      return z.NEVER;
    }
    if (!(merged.data.defaultPlan in merged.data.plans)) {
      ctx.addIssue({ code: 'custom', message: `defaultPlan "${merged.data.defaultPlan}" has no limits in plans` });
      return z.NEVER;
    }
    return merged.data;
  });

/** The limits of a tenant's plan (the default plan's for a plan without its own entry). */
export function limitsOfPlan(limits: RateLimits, plan: string): PlanLimits {
  const own = Object.hasOwn(limits.plans, plan) ? limits.plans[plan] : undefined;
  // defaultPlan is checked to exist when the configuration is loaded.
  return own ?? (limits.plans[limits.defaultPlan] as PlanLimits);
}
