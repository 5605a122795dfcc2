import { capabilityNamePattern } from '@portcullis/kit';
import { csvRows, isAssignableRole, type PermissionRule } from './role-templates.js';

/** The role template that bounds every robot; nobody is ever assigned it. */
export const robotTemplate = 'role:robot';

const planNamePattern = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * Parses `policies/plans.csv`: `plan, <plan>, <object>, <action>` lines (the plan allows the
 * capability) and `includes, <plan>, <other>` lines (the plan allows all the other, earlier
 * defined plan allows). Returns each plan's capabilities (`object:action`).
 */
export function parsePlans(csv: string): Map<string, Set<string>> {
  const plans = new Map<string, Set<string>>();
  for (const { line, fields } of csvRows(csv)) {
    const [kind, plan = '', ...rest] = fields;
    if (!planNamePattern.test(plan)) throw new Error(`plans.csv: bad plan name in: ${line}`);
    const capabilities = plans.get(plan) ?? new Set<string>();
    plans.set(plan, capabilities);
    if (kind === 'plan' && rest.length === 2) {
      capabilities.add(rest.join(':'));
    } else if (kind === 'includes' && rest.length === 1) {
      const included = plans.get(rest[0] ?? '');
      if (!included || rest[0] === plan) throw new Error(`plans.csv: ${plan} includes a plan not defined before it: ${line}`);
      for (const capability of included) capabilities.add(capability);
    } else {
      throw new Error(`plans.csv line is not "plan, <plan>, <object>, <action>" or "includes, <plan>, <other plan>": ${line}`);
    }
  }
  return plans;
}

/** Parses `policies/scopes.csv`: `assistant, <object>` lines, the objects a grant can hold on one assistant. */
export function parseAssistantObjects(csv: string): Set<string> {
  return new Set(
    csvRows(csv).map(({ line, fields }) => {
      const [kind, object] = fields;
      if (fields.length !== 2 || kind !== 'assistant' || !object) throw new Error(`scopes.csv line is not "assistant, <object>": ${line}`);
      return object;
    }),
  );
}

export interface CatalogueFiles {
  templates: readonly PermissionRule[];
  plans: ReadonlyMap<string, ReadonlySet<string>>;
  assistantObjects: ReadonlySet<string>;
}

/**
 * The capability catalogue and everything that refers to it, checked for consistency: the
 * owner's template rows are the catalogue; every other template, every plan and every
 * per-assistant object may only name what it holds. Throws (the service refuses to start)
 * otherwise, so no file can ever add a capability.
 */
export function createCatalogue({ templates, plans, assistantObjects }: CatalogueFiles) {
  const known = new Set(templates.filter(([role]) => role === 'role:owner').map(([, object, action]) => `${object}:${action}`));
  if (known.size === 0) throw new Error('roles.csv: the owner has no rows, so the capability catalogue is empty');
  const byRole = new Map<string, Set<string>>();
  for (const [role, object, action] of templates) {
    const capability = `${object}:${action}`;
    if (!capabilityNamePattern.test(capability)) throw new Error(`roles.csv: ${capability} is not a capability name`);
    if (!isAssignableRole(role) && role !== robotTemplate) throw new Error(`roles.csv: unknown role ${role}`);
    if (!known.has(capability)) {
      throw new Error(`roles.csv: ${role} grants ${capability}, which the owner's rows (the capability catalogue) lack`);
    }
    byRole.set(role, (byRole.get(role) ?? new Set()).add(capability));
  }
  for (const [plan, capabilities] of plans) {
    for (const capability of capabilities) {
      if (!known.has(capability)) throw new Error(`plans.csv: plan ${plan} allows ${capability}, which the catalogue lacks`);
    }
  }
  const objects = new Set([...known].map((capability) => capability.split(':')[0]));
  for (const object of assistantObjects) {
    if (!objects.has(object)) throw new Error(`scopes.csv: ${object} is not an object of the catalogue`);
  }
  const capabilities = [...known].sort();

  return {
    /** Every capability, `object:action`, sorted. */
    capabilities,
    templates,
    planNames: [...plans.keys()],
    isKnown: (capability: string) => known.has(capability),
    /** Whether a grant on one assistant can hold the object's capabilities. */
    isPerAssistant: (object: string) => assistantObjects.has(object),
    /** Whether a role's template (or the robot template) grants the capability. */
    templateGrants: (role: string, capability: string) => byRole.get(role)?.has(capability) ?? false,
    isPlan: (plan: string) => plans.has(plan),
    /** Whether the plan allows the capability; an unknown plan allows nothing. */
    planAllows: (plan: string, capability: string) => plans.get(plan)?.has(capability) ?? false,
  };
}

export type Catalogue = ReturnType<typeof createCatalogue>;
