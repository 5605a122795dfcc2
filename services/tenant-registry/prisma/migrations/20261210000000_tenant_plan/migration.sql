-- A tenant's plan (tier): the policy service denies every capability the plan excludes. The
-- registry stores a plan only after the policy service accepted its name (policies/plans.csv).
-- New tenants start on 'free' (the policy service is told so at creation); existing tenants
-- become 'free' here, which is what the policy service assumes of a tenant it holds no plan for
-- while POLICY_DEFAULT_PLAN keeps its default.
-- The statuses a tenant can be set to are already constrained ('active', 'suspended').
ALTER TABLE tenants
  ADD COLUMN plan text NOT NULL DEFAULT 'free' CHECK (plan ~ '^[a-z][a-z0-9_-]{0,31}$');
