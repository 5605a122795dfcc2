import type { Role } from '@portcullis/proto/common';
import { AppError, roleNameOf } from '@portcullis/kit';

/** A `p` rule of the role templates: role, capability object, action. */
export type PermissionRule = readonly [role: string, object: string, action: string];

/** The data lines of one of the `policies/*.csv` files (`#` comments and blank lines skipped), split on commas. */
export function csvRows(csv: string): { line: string; fields: string[] }[] {
  return csv
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'))
    .map((line) => ({ line, fields: line.split(',').map((field) => field.trim()) }));
}

/** Parses `policies/roles.csv` (`p, role, object, action` lines; `#` comments). */
export function parseRoleTemplates(csv: string): PermissionRule[] {
  return csvRows(csv).map(({ line, fields }, index) => {
    const [kind, role, object, action] = fields;
    if (fields.length !== 4 || kind !== 'p' || !role || !object || !action) {
      throw new Error(`roles.csv line ${index + 1} is not "p, role, object, action": ${line}`);
    }
    return [role, object, action] as const;
  });
}

/** The role templates a person can be assigned. `role:robot` is not one: nobody ever holds it. */
export const assignableRoles = ['role:owner', 'role:admin', 'role:user'] as const;
export type AssignableRole = (typeof assignableRoles)[number];

export function isAssignableRole(value: string): value is AssignableRole {
  return (assignableRoles as readonly string[]).includes(value);
}

/** Casbin subject of a role: `role:owner`, `role:admin`, `role:user`. */
export function roleSubject(role: Role): AssignableRole {
  const name = roleNameOf(role);
  if (name === undefined) throw new AppError('INVALID_ARGUMENT', 'role is required', { details: { field: 'role' } });
  return `role:${name}`;
}
