import { Role } from '@portcullis/proto/common';

/** Role names carried in access tokens. */
export type RoleName = 'owner' | 'admin' | 'user';

/** The token role for a proto role; undefined for UNSPECIFIED or anything unknown (deny). */
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

export function protoRoleOf(role: RoleName): Role {
  switch (role) {
    case 'owner':
      return Role.OWNER;
    case 'admin':
      return Role.ADMIN;
    case 'user':
      return Role.USER;
  }
}
