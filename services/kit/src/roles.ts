import { Role } from '@portcullis/proto/common';

/** Role names as they appear in tokens, storage and the HTTP API. */
export const roleNames = ['owner', 'admin', 'user'] as const;
export type RoleName = (typeof roleNames)[number];

/** The name of a wire role; undefined for UNSPECIFIED (callers decide: deny or reject). */
export function roleNameOf(role: Role): RoleName | undefined {
  switch (role) {
    case Role.OWNER:
      return 'owner';
    case Role.ADMIN:
      return 'admin';
    case Role.USER:
      return 'user';
    case Role.UNSPECIFIED:
      return undefined;
  }
}

/** The wire role of a role name. */
export function roleOf(name: RoleName): Role {
  switch (name) {
    case 'owner':
      return Role.OWNER;
    case 'admin':
      return Role.ADMIN;
    case 'user':
      return Role.USER;
  }
}

export function isRoleName(value: unknown): value is RoleName {
  return typeof value === 'string' && (roleNames as readonly string[]).includes(value);
}

/** A capability name `object:action` as used in API key scopes, e.g. `tools:invoke`. */
export const capabilityNamePattern = /^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_-]{0,31}$/;
