import type { Role } from '@portcullis/proto/common';
import { AppError, roleNameOf } from '@portcullis/kit';

/** A `p` rule of the role templates: role, capability object, action. */
export type PermissionRule = readonly [role: string, object: string, action: string];

/** Parses `policies/roles.csv` (`p, role, object, action` lines; `#` comments). */
export function parseRoleTemplates(csv: string): PermissionRule[] {
  return csv
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'))
    .map((line, index) => {
      const fields = line.split(',').map((field) => field.trim());
      if (fields.length !== 4 || fields[0] !== 'p' || fields.some((field) => field.length === 0)) {
        throw new Error(`roles.csv line ${index + 1} is not "p, role, object, action": ${line}`);
      }
      return [fields[1], fields[2], fields[3]] as unknown as PermissionRule;
    });
}

/** Casbin subject of a role: `role:owner`, `role:admin`, `role:user`. */
export function roleSubject(role: Role): string {
  const name = roleNameOf(role);
  if (name === undefined) throw new AppError('INVALID_ARGUMENT', 'role is required');
  return `role:${name}`;
}
