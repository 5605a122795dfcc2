import { newEnforcer, newModelFromString, type Enforcer } from 'casbin';
import { AppError, isUuid, requireUuid } from '@portcullis/kit';
import { PrincipalKind, type Principal } from '@portcullis/proto/common';
import { robotTemplate, type Catalogue } from './catalogue.js';
import { isAssignableRole } from './role-templates.js';
import { subjectOf } from './subjects.js';

/** Casbin scope of a tenant-wide grant, and of a question asked tenant-wide. */
export const tenantWide = '*';

/** At most this many queries in one BatchCheck. */
export const maxBatchSize = 100;

/** A role held by a subject, tenant-wide (assistantId null) or on one assistant. */
export interface StoredRole {
  subject: string;
  role: string;
  assistantId: string | null;
}

/** A single capability held by a subject on top of their roles, tenant-wide or on one assistant. */
export interface StoredPermission {
  subject: string;
  object: string;
  action: string;
  assistantId: string | null;
}

/** Everything stored for one tenant; a tenant without a stored plan has `plan: null`. */
export interface TenantRules {
  roles: StoredRole[];
  permissions: StoredPermission[];
  plan: string | null;
}

export interface TenantRuleSource {
  loadTenant(tenantId: string): Promise<TenantRules>;
}

/** Where a grant comes from; `assistantId` is empty for a tenant-wide grant. */
export interface Grant {
  kind: 'role' | 'permission';
  /** `role:<name>`, or the `object:action` of a permission. */
  name: string;
  assistantId: string;
}

export interface CapabilityQuery {
  /** Empty: tenant-wide. */
  assistantId: string;
  object: string;
  action: string;
}

export interface DecisionRequest extends CapabilityQuery {
  principal?: Principal | undefined;
  tenantId: string;
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

export interface Explanation extends Decision {
  /** The grant that allowed; undefined when denied. */
  matched: Grant | undefined;
  /** The grants consulted (a robot's: its creator's), tenant-wide and on the assistant. */
  held: Grant[];
  /** Each check made, in order. */
  steps: string[];
}

export interface DecisionLibraryDeps {
  modelText: string;
  catalogue: Catalogue;
  rules: TenantRuleSource;
  /** Plan of a tenant without a stored one; must be a plan of plans.csv. */
  defaultPlan: string;
  maxCachedTenants: number;
  /** A tenant's rules are reloaded once they are this old, even without a change notice. */
  maxAgeMs: number;
  now?: () => number;
}

/** A tenant's rules, ready for decisions. */
interface LoadedTenant {
  enforcer: Enforcer;
  /**
   * Casbin's answers for this load of the tenant's rules, by request (subject, scope, object,
   * action). A tenant's rules never change under a loaded enforcer (a change loads a new one),
   * so an answer stays right for as long as this load is used. Bounded: emptied when full.
   */
  answers: Map<string, readonly [boolean, readonly string[]]>;
  plan: string;
  /** Every subject's grants, as loaded into the enforcer. */
  grants: ReadonlyMap<string, readonly Grant[]>;
}

/** Most remembered answers per loaded tenant: roughly subjects × capabilities × scopes in use. */
const MAX_ANSWERS_PER_TENANT = 50_000;

/**
 * Casbin's decision (allowed, matched rule) for one request, asked once per loaded tenant: a
 * casbin enforce walks every rule of the tenant and costs far more than the lookup.
 */
function enforceOnce(
  loaded: LoadedTenant,
  subject: string,
  scope: string,
  object: string,
  action: string,
): readonly [boolean, readonly string[]] {
  const key = `${subject}\n${scope}\n${object}\n${action}`;
  const known = loaded.answers.get(key);
  if (known) return known;
  const answer = loaded.enforcer.enforceExSync(subject, scope, object, action);
  if (loaded.answers.size >= MAX_ANSWERS_PER_TENANT) loaded.answers.clear();
  loaded.answers.set(key, answer);
  return answer;
}

/** Who is asking, once validated. */
type Asker =
  | { kind: 'none' }
  | { kind: 'subject'; subject: string; tenantId: string }
  /** A robot is decided by the robot template and its creator's grants, never by grants of its own. */
  | { kind: 'robot'; subject: string; tenantId: string; creator: string };

const personPrefix = 'user:';

function askerOf(principal: Principal | undefined): Asker {
  if (!principal) return { kind: 'none' };
  // Validates kind and id of every principal, robots included.
  const subject = subjectOf(principal);
  const tenantId = principal.tenantId.toLowerCase();
  if (principal.kind !== PrincipalKind.ROBOT) return { kind: 'subject', subject, tenantId };
  if (principal.actingUserId.length === 0) {
    throw new AppError('INVALID_ARGUMENT', 'principal.acting_user_id (the robot creator) is required for a robot', {
      details: { field: 'principal.acting_user_id' },
    });
  }
  return { kind: 'robot', subject, tenantId, creator: `${personPrefix}${requireUuid(principal.actingUserId, 'principal.acting_user_id')}` };
}

/** Empty (tenant-wide) or a UUID, lowercased. */
function optionalAssistant(assistantId: string, field: string): string {
  if (assistantId.length === 0) return '';
  if (!isUuid(assistantId)) throw new AppError('INVALID_ARGUMENT', `${field} must be empty or a UUID`, { details: { field } });
  return assistantId.toLowerCase();
}

function describeGrant(grant: Grant): string {
  if (grant.kind === 'role') return grant.assistantId ? `${grant.name} on assistant ${grant.assistantId}` : grant.name;
  return grant.assistantId ? `a permission on assistant ${grant.assistantId}` : 'a tenant-wide permission';
}

/**
 * Decisions, one Casbin enforcer per tenant (loaded lazily, kept in a bounded LRU, reloaded
 * after a change notice or `maxAgeMs`), so a decision only ever sees its own tenant's rules
 * and its cost does not grow with the number of tenants.
 *
 * Check, BatchCheck, Explain and ListCapabilities all run `evaluate`, in this order:
 * catalogue → principal's tenant → scope → plan → robot template → the grants.
 */
export function createDecisionLibrary({
  modelText,
  catalogue,
  rules,
  defaultPlan,
  maxCachedTenants,
  maxAgeMs,
  now = Date.now,
}: DecisionLibraryDeps) {
  if (!catalogue.isPlan(defaultPlan)) throw new Error(`default plan ${defaultPlan} is not a plan of plans.csv`);
  const enforcers = new Map<string, { loaded: Promise<LoadedTenant>; loadedAt: number }>();

  async function load(tenantId: string): Promise<LoadedTenant> {
    const stored = await rules.loadTenant(tenantId);
    const grants = new Map<string, Grant[]>();
    const policies = new Map<string, string[]>();
    const groupings = new Map<string, string[]>();
    const hold = (subject: string, grant: Grant) => {
      grants.set(subject, [...(grants.get(subject) ?? []), grant]);
    };
    for (const [role, object, action] of catalogue.templates) {
      const rule = [role, tenantWide, object, action];
      policies.set(rule.join(','), rule);
    }
    // Roles are held by people. A robot never gets a grouping of its own, the robot template is
    // never something one is assigned, and an owner is tenant-wide: other rows, however they
    // got stored, are ignored.
    for (const { subject, role, assistantId } of stored.roles) {
      if (!subject.startsWith(personPrefix) || !isAssignableRole(role)) continue;
      if (assistantId !== null && role === 'role:owner') continue;
      const rule = [subject, role, assistantId ?? tenantWide];
      if (groupings.has(rule.join(','))) continue;
      groupings.set(rule.join(','), rule);
      hold(subject, { kind: 'role', name: role, assistantId: assistantId ?? '' });
    }
    // A permission is held on top of a role: it counts only while its subject holds some role
    // in the tenant, and only for catalogue capabilities, on an assistant only where the object
    // is per assistant.
    for (const { subject, object, action, assistantId } of stored.permissions) {
      const capability = `${object}:${action}`;
      if (!grants.has(subject) || !catalogue.isKnown(capability)) continue;
      if (assistantId !== null && !catalogue.isPerAssistant(object)) continue;
      const rule = [subject, assistantId ?? tenantWide, object, action];
      if (policies.has(rule.join(','))) continue;
      policies.set(rule.join(','), rule);
      hold(subject, { kind: 'permission', name: capability, assistantId: assistantId ?? '' });
    }
    const enforcer = await newEnforcer(newModelFromString(modelText));
    await enforcer.addPolicies([...policies.values()]);
    if (groupings.size > 0) await enforcer.addGroupingPolicies([...groupings.values()]);
    return { enforcer, answers: new Map(), plan: stored.plan ?? defaultPlan, grants };
  }

  function loadedTenant(tenantId: string): Promise<LoadedTenant> {
    const cached = enforcers.get(tenantId);
    if (cached && now() - cached.loadedAt < maxAgeMs) {
      enforcers.delete(tenantId);
      enforcers.set(tenantId, cached);
      return cached.loaded;
    }
    const entry = { loaded: load(tenantId), loadedAt: now() };
    enforcers.delete(tenantId);
    enforcers.set(tenantId, entry);
    // A failed load is forgotten, unless a newer load has replaced it meanwhile.
    entry.loaded.catch(() => {
      if (enforcers.get(tenantId) === entry) enforcers.delete(tenantId);
    });
    while (enforcers.size > maxCachedTenants) {
      const oldest = enforcers.keys().next().value;
      if (oldest === undefined) break;
      enforcers.delete(oldest);
    }
    return entry.loaded;
  }

  /** The grant Casbin matched: a permission row of the subject, or a role template row (tenant-wide role first). */
  function matchedGrant(loaded: LoadedTenant, grantee: string, rule: readonly string[], scope: string): Grant {
    const [subject = '', ruleScope = '', object = '', action = ''] = rule;
    if (subject === grantee)
      return { kind: 'permission', name: `${object}:${action}`, assistantId: ruleScope === tenantWide ? '' : ruleScope };
    const tenantWideRole = (loaded.grants.get(grantee) ?? []).some((g) => g.kind === 'role' && g.name === subject && g.assistantId === '');
    return { kind: 'role', name: subject, assistantId: tenantWideRole || scope === tenantWide ? '' : scope };
  }

  /** The one decision path. `rulesOf` loads the tenant's rules at most once per call of `decide`. */
  async function evaluate(
    asker: Asker,
    tenantId: string,
    query: CapabilityQuery,
    rulesOf: () => Promise<LoadedTenant>,
  ): Promise<Explanation> {
    const { object, action, assistantId } = query;
    const capability = `${object}:${action}`;
    const steps: string[] = [];
    const held: Grant[] = [];
    const deny = (reason: string): Explanation => ({ allowed: false, reason, matched: undefined, held, steps });

    if (!catalogue.isKnown(capability)) {
      steps.push(`catalogue: ${capability} is unknown`);
      return deny(`unknown capability ${capability}`);
    }
    steps.push(`catalogue: ${capability} is known`);
    if (asker.kind === 'none') {
      steps.push('principal: none given');
      return deny('no principal');
    }
    if (asker.tenantId !== tenantId) {
      steps.push('tenant: the principal belongs to another tenant');
      return deny('principal belongs to another tenant');
    }
    steps.push(`tenant: the principal belongs to tenant ${tenantId}`);

    // Only per-assistant objects are decided on the assistant; everything else tenant-wide, so an
    // assistant grant never holds a tenant-wide capability whatever assistant a request names.
    let scope = tenantWide;
    if (!catalogue.isPerAssistant(object)) {
      steps.push(`scope: ${object} is tenant-wide${assistantId ? `; assistant ${assistantId} does not matter` : ''}`);
    } else if (assistantId) {
      scope = assistantId;
      steps.push(`scope: ${object} is per assistant; tenant-wide grants and grants on assistant ${assistantId} count`);
    } else {
      steps.push(`scope: ${object} is per assistant, asked tenant-wide; only tenant-wide grants count`);
    }

    const loaded = await rulesOf();
    const grantee = asker.kind === 'robot' ? asker.creator : asker.subject;
    held.push(...(loaded.grants.get(grantee) ?? []).filter((grant) => grant.assistantId === '' || grant.assistantId === assistantId));

    if (!catalogue.isPlan(loaded.plan)) {
      steps.push(`plan ${loaded.plan}: unknown, allows nothing`);
      return deny(`plan ${loaded.plan} is unknown`);
    }
    if (!catalogue.planAllows(loaded.plan, capability)) {
      steps.push(`plan ${loaded.plan}: excludes ${capability}`);
      return deny(`plan ${loaded.plan} excludes ${capability}`);
    }
    steps.push(`plan ${loaded.plan}: allows ${capability}`);

    const where = scope === tenantWide ? '' : ` on assistant ${scope}`;
    if (asker.kind === 'robot') {
      // The template's own name matches itself through g, with no assignment involved.
      if (!enforceOnce(loaded, robotTemplate, scope, object, action)[0]) {
        steps.push(`robot: ${robotTemplate} does not grant ${capability}`);
        return deny(`robots may not ${capability}`);
      }
      steps.push(`robot: ${robotTemplate} grants ${capability}; capped by creator ${grantee}`);
    }

    const [allowed, rule] = enforceOnce(loaded, grantee, scope, object, action);
    if (!allowed) {
      steps.push(`grants: no role or permission of ${grantee} grants ${capability}${where}`);
      return deny(
        asker.kind === 'robot'
          ? `creator ${grantee} lacks ${capability}${where}`
          : `no role or permission of ${grantee} grants ${capability}${where}`,
      );
    }
    const matched = matchedGrant(loaded, grantee, rule, scope);
    steps.push(`grants: ${describeGrant(matched)} grants ${capability}`);
    const reason =
      asker.kind === 'robot'
        ? `granted by ${robotTemplate} and creator ${grantee} via ${describeGrant(matched)} (${capability})`
        : `granted by ${describeGrant(matched)} (${capability})`;
    return { allowed: true, reason, matched, held, steps };
  }

  /** Validates the request, then evaluates each query, loading the tenant's rules at most once. */
  async function decide(
    principal: Principal | undefined,
    tenantIdInput: string,
    queries: readonly CapabilityQuery[],
    fieldOf: (index: number) => string,
  ): Promise<Explanation[]> {
    const tenantId = requireUuid(tenantIdInput, 'tenant_id');
    const asker = askerOf(principal);
    const normalised = queries.map((query, index) => ({ ...query, assistantId: optionalAssistant(query.assistantId, fieldOf(index)) }));
    let loaded: Promise<LoadedTenant> | undefined;
    const rulesOf = () => (loaded ??= loadedTenant(tenantId));
    const results: Explanation[] = [];
    for (const query of normalised) results.push(await evaluate(asker, tenantId, query, rulesOf));
    return results;
  }

  const first = (explanations: Explanation[]): Explanation => {
    const [explanation] = explanations;
    if (!explanation) throw new AppError('INTERNAL', 'no decision');
    return explanation;
  };
  const decisionOf = ({ allowed, reason }: Explanation): Decision => ({ allowed, reason });

  return {
    /** Deny by default: unknown capabilities, other tenants, the plan and missing grants deny. */
    async check({ principal, tenantId, ...query }: DecisionRequest): Promise<Decision> {
      return decisionOf(first(await decide(principal, tenantId, [query], () => 'assistant_id')));
    },
    /** Several decisions for one principal in one tenant, in order; the tenant's rules load once. */
    async checkMany(request: {
      principal?: Principal | undefined;
      tenantId: string;
      queries: readonly CapabilityQuery[];
    }): Promise<Decision[]> {
      if (request.queries.length > maxBatchSize) {
        throw new AppError('INVALID_ARGUMENT', `at most ${maxBatchSize} queries per batch`, { details: { field: 'queries' } });
      }
      const decisions = await decide(request.principal, request.tenantId, request.queries, (index) => `queries[${index}].assistant_id`);
      return decisions.map(decisionOf);
    },
    /** The decision of `check` with the steps taken, the grants held in scope and the grant that allowed. */
    async explain({ principal, tenantId, ...query }: DecisionRequest): Promise<Explanation> {
      return first(await decide(principal, tenantId, [query], () => 'assistant_id'));
    },
    /** Every catalogue capability `check` would allow the principal on the assistant (or tenant-wide), sorted. */
    async listCapabilities(request: { principal?: Principal | undefined; tenantId: string; assistantId: string }): Promise<string[]> {
      const queries = catalogue.capabilities.map((capability) => {
        const [object = '', action = ''] = capability.split(':');
        return { assistantId: request.assistantId, object, action };
      });
      const decisions = await decide(request.principal, request.tenantId, queries, () => 'assistant_id');
      return catalogue.capabilities.filter((_, index) => decisions[index]?.allowed === true);
    },
    /** Drops a tenant's cached rules; the next decision reloads them. */
    invalidate(tenantId: string): void {
      enforcers.delete(tenantId.toLowerCase());
    },
  };
}

export type DecisionLibrary = ReturnType<typeof createDecisionLibrary>;
