// Gateway rate limits for test and benchmark platforms (no test framework imported: benchmarks load it too).

const outOfReach = { points: 1_000_000, windowSeconds: 60 };

/**
 * RATE_LIMITS no end-to-end test or benchmark reaches unless it means to: every bucket is still
 * counted in Redis at every request, but none refuses — all of a run's requests come from
 * 127.0.0.1 and a few accounts.
 */
export const unreachableRateLimits = {
  plans: Object.fromEntries(
    ['free', 'pro', 'enterprise'].map((plan) => [
      plan,
      { tenant: outOfReach, user: outOfReach, apiKey: outOfReach, robot: outOfReach, device: outOfReach },
    ]),
  ),
  defaultPlan: 'free',
  sensitive: {
    signIn: outOfReach,
    sms: outOfReach,
    oauth: outOfReach,
    activationStart: outOfReach,
    activationCode: outOfReach,
    failedAuth: outOfReach,
    auditExport: outOfReach,
  },
};
