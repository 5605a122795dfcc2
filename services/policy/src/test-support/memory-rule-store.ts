import type { StoredPermission, StoredRole, TenantRules, TenantRuleSource } from '../libraries/decisions.js';
import type { RuleChanges, RuleStore } from '../libraries/grants.js';

/**
 * In-memory tenant rules for unit tests: what the Postgres queries do, including a change that
 * throws leaving nothing behind and changes of one tenant never interleaving.
 */
export function createMemoryRuleStore(): TenantRuleSource &
  RuleStore & {
    /** Every tenant a decision loaded, in order. */
    loads: string[];
    rulesOf(tenantId: string): TenantRules;
  } {
  const tenants = new Map<string, TenantRules>();
  const queues = new Map<string, Promise<unknown>>();
  const loads: string[] = [];
  const copy = (rules: TenantRules | undefined): TenantRules => ({
    roles: [...(rules?.roles ?? [])],
    permissions: [...(rules?.permissions ?? [])],
    plan: rules?.plan ?? null,
  });
  const sameRole = (a: StoredRole, b: StoredRole) => a.subject === b.subject && a.role === b.role && a.assistantId === b.assistantId;
  const samePermission = (a: StoredPermission, b: StoredPermission) =>
    a.subject === b.subject && a.object === b.object && a.action === b.action && a.assistantId === b.assistantId;

  function changesOf(rules: TenantRules): RuleChanges {
    const removeWhere = <T>(list: T[], match: (item: T) => boolean): boolean => {
      const before = list.length;
      const kept = list.filter((item) => !match(item));
      list.splice(0, list.length, ...kept);
      return kept.length < before;
    };
    return {
      rolesOf: (subject) =>
        Promise.resolve(rules.roles.filter((row) => row.subject === subject).map(({ role, assistantId }) => ({ role, assistantId }))),
      countTenantWide: (role) => Promise.resolve(rules.roles.filter((row) => row.role === role && row.assistantId === null).length),
      assignRole(subject, role, assistantId) {
        const row = { subject, role, assistantId };
        if (rules.roles.some((held) => sameRole(held, row))) return Promise.resolve(false);
        rules.roles.push(row);
        return Promise.resolve(true);
      },
      revokeRole: (subject, role, assistantId) =>
        Promise.resolve(removeWhere(rules.roles, (held) => sameRole(held, { subject, role, assistantId }))),
      revokeAllPermissions: (subject) => Promise.resolve(removeWhere(rules.permissions, (held) => held.subject === subject)),
      grantPermission(subject, object, action, assistantId) {
        const row = { subject, object, action, assistantId };
        if (rules.permissions.some((held) => samePermission(held, row))) return Promise.resolve(false);
        rules.permissions.push(row);
        return Promise.resolve(true);
      },
      revokePermission: (subject, object, action, assistantId) =>
        Promise.resolve(removeWhere(rules.permissions, (held) => samePermission(held, { subject, object, action, assistantId }))),
      setPlan(plan) {
        if (rules.plan === plan) return Promise.resolve(false);
        rules.plan = plan;
        return Promise.resolve(true);
      },
    };
  }

  return {
    loads,
    rulesOf: (tenantId) => copy(tenants.get(tenantId)),
    loadTenant(tenantId) {
      loads.push(tenantId);
      return Promise.resolve(copy(tenants.get(tenantId)));
    },
    change<R>(tenantId: string, apply: (changes: RuleChanges) => Promise<R>): Promise<R> {
      const run = async () => {
        const draft = copy(tenants.get(tenantId));
        const result = await apply(changesOf(draft));
        tenants.set(tenantId, draft);
        return result;
      };
      const result = (queues.get(tenantId) ?? Promise.resolve()).then(run, run);
      queues.set(
        tenantId,
        result.catch(() => undefined),
      );
      return result;
    },
  };
}
