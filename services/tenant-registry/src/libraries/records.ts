import type { MemberRole } from './roles.js';

export type TenantStatusName = 'active' | 'suspended';

export interface TenantRecord {
  id: string;
  name: string;
  status: TenantStatusName;
  /** The plan (tier) the policy service enforces, e.g. `free`, `pro`, `enterprise`. */
  plan: string;
}

export interface AssistantRecord {
  id: string;
  tenantId: string;
  name: string;
}

export interface DomainRecord {
  id: string;
  tenantId: string;
  assistantId: string;
  host: string;
  /** Proves ownership when published in the host's challenge TXT record. */
  verificationToken: string;
  /** Null until ownership is verified; only verified domains resolve. */
  verifiedAt: Date | null;
}

export interface TeamRecord {
  id: string;
  tenantId: string;
  name: string;
}

export interface ChatGroupRecord {
  id: string;
  tenantId: string;
  assistantId: string;
  name: string;
}

export interface MembershipRecord {
  tenantId: string;
  tenantName: string;
  userId: string;
  role: MemberRole;
  /** When this membership began; a person removed and added again has a new one. */
  memberSince: Date;
}

/** What a host or assistant id resolves to. */
export interface ContextRecord {
  tenantId: string;
  tenantName: string;
  tenantStatus: TenantStatusName;
  /** The tenant's plan (tier). */
  tenantPlan: string;
  assistantId: string;
}

/** Kinds of change announced on `tenant.changed`. */
export type TenantChange =
  | 'tenant.created'
  | 'tenant.status.changed'
  | 'tenant.plan.changed'
  | 'assistant.created'
  | 'domain.added'
  | 'domain.verified'
  | 'domain.moved'
  | 'team.created'
  | 'team.members.changed'
  | 'chat-group.created'
  | 'chat-group.members.changed'
  | 'member.changed';

/** Tells other services that something of a tenant changed, so they can drop cached copies. */
export type AnnounceChange = (tenantId: string, change: TenantChange) => void;
