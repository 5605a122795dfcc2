import { newEnforcer, newModelFromString, type Enforcer } from 'casbin';
import type { PermissionRule } from './role-templates.js';

export interface Assignment {
  subject: string;
  role: string;
}

export interface AssignmentSource {
  listForTenant(tenantId: string): Promise<Assignment[]>;
}

export interface DecisionRequest {
  subject: string;
  tenantId: string;
  object: string;
  action: string;
}

/** A robot's request: capped by the robot template and by its creator's current rights. */
export interface RobotDecisionRequest {
  /** The robot's creator (`user:<id>` in the tenant's assignments). */
  actingUserId: string;
  tenantId: string;
  object: string;
  action: string;
}

/** The role template that bounds every robot; nobody is ever assigned it. */
export const robotTemplate = 'role:robot';

export interface Decision {
  allowed: boolean;
  reason: string;
}

export interface DecisionLibraryDeps {
  modelText: string;
  templates: readonly PermissionRule[];
  assignments: AssignmentSource;
  /** Upper bound on tenants whose enforcer is kept in memory (least recently used is dropped). */
  maxCachedTenants: number;
  /**
   * Longest time a tenant's rules are reused without reloading: the bound on staleness should
   * a change notice on NATS be missed.
   */
  maxAgeMs: number;
  now?: () => number;
}

/**
 * Casbin decisions with one enforcer per tenant, loaded lazily from that tenant's role
 * assignments and kept in a bounded LRU: a decision only ever sees the rules of its own
 * tenant, and its cost does not grow with the number of tenants.
 */
export function createDecisionLibrary({
  modelText,
  templates,
  assignments,
  maxCachedTenants,
  maxAgeMs,
  now = Date.now,
}: DecisionLibraryDeps) {
  // The owner's rows alone are the catalogue; every other template (role:robot included) may
  // only narrow it, never add to it.
  const catalogue = new Set(templates.filter(([role]) => role === 'role:owner').map(([, object, action]) => `${object}:${action}`));
  for (const [role, object, action] of templates) {
    if (!catalogue.has(`${object}:${action}`)) {
      throw new Error(`roles.csv: ${role} grants ${object}:${action}, which the owner's rows (the capability catalogue) lack`);
    }
  }
  const enforcers = new Map<string, { enforcer: Promise<Enforcer>; loadedAt: number }>();

  async function load(tenantId: string): Promise<Enforcer> {
    const enforcer = await newEnforcer(newModelFromString(modelText));
    if (templates.length > 0) await enforcer.addPolicies(templates.map((rule) => [...rule]));
    // Roles are held by people. A robot never gets a grouping of its own, and the robot
    // template is never something one is assigned: such rows, however they got stored, are ignored.
    const rows = (await assignments.listForTenant(tenantId)).filter(
      ({ subject, role }) => !subject.startsWith('robot:') && !subject.startsWith('role:') && role !== robotTemplate,
    );
    if (rows.length > 0) await enforcer.addGroupingPolicies(rows.map(({ subject, role }) => [subject, role, tenantId]));
    return enforcer;
  }

  function enforcerFor(tenantId: string): Promise<Enforcer> {
    const cached = enforcers.get(tenantId);
    if (cached && now() - cached.loadedAt < maxAgeMs) {
      enforcers.delete(tenantId);
      enforcers.set(tenantId, cached);
      return cached.enforcer;
    }
    const entry = { enforcer: load(tenantId), loadedAt: now() };
    enforcers.delete(tenantId);
    enforcers.set(tenantId, entry);
    // A failed load is forgotten, unless a newer load has replaced it meanwhile.
    entry.enforcer.catch(() => {
      if (enforcers.get(tenantId) === entry) enforcers.delete(tenantId);
    });
    while (enforcers.size > maxCachedTenants) {
      const oldest = enforcers.keys().next().value;
      if (oldest === undefined) break;
      enforcers.delete(oldest);
    }
    return entry.enforcer;
  }

  return {
    /** Deny by default: unknown capabilities and subjects without a matching role are denied. */
    async check({ subject, tenantId, object, action }: DecisionRequest): Promise<Decision> {
      if (!catalogue.has(`${object}:${action}`)) {
        return { allowed: false, reason: `unknown capability ${object}:${action}` };
      }
      const enforcer = await enforcerFor(tenantId);
      const [allowed, rule] = await enforcer.enforceEx(subject, tenantId, object, action);
      if (!allowed) return { allowed: false, reason: `no role of ${subject} grants ${object}:${action}` };
      return { allowed: true, reason: `granted by ${rule[0] ?? 'role'} (${object}:${action})` };
    },
    /**
     * A robot may use a capability only when the robot template grants it AND its creator
     * holds it in the tenant now (through their current role), so a robot never exceeds its
     * creator and loses what the creator loses. The reason names the part that denied.
     */
    async checkRobot({ actingUserId, tenantId, object, action }: RobotDecisionRequest): Promise<Decision> {
      const capability = `${object}:${action}`;
      if (!catalogue.has(capability)) return { allowed: false, reason: `unknown capability ${capability}` };
      const enforcer = await enforcerFor(tenantId);
      // The template's own name matches itself through g, with no assignment involved.
      if (!(await enforcer.enforce(robotTemplate, tenantId, object, action))) {
        return { allowed: false, reason: `robots may not ${capability}` };
      }
      const creator = `user:${actingUserId}`;
      const [allowed, rule] = await enforcer.enforceEx(creator, tenantId, object, action);
      if (!allowed) return { allowed: false, reason: `creator ${creator} lacks ${capability}` };
      return { allowed: true, reason: `granted by ${robotTemplate} and creator ${creator} via ${rule[0] ?? 'role'} (${capability})` };
    },
    /** Drops a tenant's cached rules; the next decision reloads them. */
    invalidate(tenantId: string): void {
      enforcers.delete(tenantId);
    },
    isKnownCapability(object: string, action: string): boolean {
      return catalogue.has(`${object}:${action}`);
    },
  };
}

export type DecisionLibrary = ReturnType<typeof createDecisionLibrary>;
