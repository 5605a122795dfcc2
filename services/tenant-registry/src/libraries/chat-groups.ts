import { AppError, requireText, requireUuid } from '@portcullis/kit';
import { requireOwnerOrAdmin, type RoleLookup } from './managers.js';
import type { AnnounceChange, ChatGroupRecord } from './records.js';

const MAX_NAME = 100;

/**
 * Chat groups and their members inside one tenant's RLS scope. The writes check, in the same
 * transaction, that the assistant or group is the tenant's and that the user is a member of the tenant.
 */
export interface ChatGroupStore {
  /** NOT_FOUND when the assistant is not the tenant's; ALREADY_EXISTS when the assistant has a group of that name. */
  insertChatGroup(tenantId: string, assistantId: string, name: string): Promise<ChatGroupRecord>;
  /** The assistant's chat groups, by name; NOT_FOUND when the assistant is not the tenant's. */
  listChatGroups(tenantId: string, assistantId: string): Promise<ChatGroupRecord[]>;
  /**
   * Puts a member of the tenant into one of its chat groups; true when added, false when already
   * there. NOT_FOUND when the group is not the tenant's; FAILED_PRECONDITION when the user is
   * not a member of the tenant.
   */
  insertChatGroupMember(tenantId: string, chatGroupId: string, userId: string): Promise<boolean>;
  /** True when the user was in the group and is no longer. */
  deleteChatGroupMember(tenantId: string, chatGroupId: string, userId: string): Promise<boolean>;
  /** The user ids in the group, ascending; NOT_FOUND when the group is not the tenant's. */
  listChatGroupMembers(tenantId: string, chatGroupId: string): Promise<string[]>;
}

export interface ChatGroupLibraryDeps {
  store: ChatGroupStore;
  /** Where the actor's stored role is read. */
  members: RoleLookup;
  announce: AnnounceChange;
}

interface ChatGroupMemberChange {
  tenantId: string;
  chatGroupId: string;
  userId: string;
  /** The person making the change; their stored role must be owner or admin. */
  actorUserId: string;
}

/** Named groups of a tenant's members inside one of its assistants. */
export function createChatGroupLibrary({ store, members, announce }: ChatGroupLibraryDeps) {
  /** Validated ids of a member change whose actor is, by their stored role, an owner or admin of the tenant. */
  async function authorizedMemberChange(input: ChatGroupMemberChange) {
    const tenantId = requireUuid(input.tenantId, 'tenant_id');
    const chatGroupId = requireUuid(input.chatGroupId, 'chat_group_id');
    const userId = requireUuid(input.userId, 'user_id');
    const actorUserId = requireUuid(input.actorUserId, 'actor.id');
    await requireOwnerOrAdmin(members, tenantId, actorUserId, 'change chat group members');
    return { tenantId, chatGroupId, userId };
  }

  return {
    async createChatGroup(input: { tenantId: string; assistantId: string; name: string; actorUserId: string }): Promise<ChatGroupRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const name = requireText(input.name, 'name', MAX_NAME);
      const actorUserId = requireUuid(input.actorUserId, 'actor.id');
      await requireOwnerOrAdmin(members, tenantId, actorUserId, 'create chat groups');
      const group = await store.insertChatGroup(tenantId, assistantId, name);
      announce(tenantId, 'chat-group.created');
      return group;
    },

    async listChatGroups(input: { tenantId: string; assistantId: string }): Promise<ChatGroupRecord[]> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      return store.listChatGroups(tenantId, assistantId);
    },

    /** Idempotent: adding someone already in the group succeeds and changes nothing. */
    async addChatGroupMember(input: ChatGroupMemberChange): Promise<void> {
      const { tenantId, chatGroupId, userId } = await authorizedMemberChange(input);
      const added = await store.insertChatGroupMember(tenantId, chatGroupId, userId);
      if (added) announce(tenantId, 'chat-group.members.changed');
    },

    async removeChatGroupMember(input: ChatGroupMemberChange): Promise<void> {
      const { tenantId, chatGroupId, userId } = await authorizedMemberChange(input);
      const removed = await store.deleteChatGroupMember(tenantId, chatGroupId, userId);
      if (!removed) throw new AppError('NOT_FOUND', 'the user is not a member of this chat group');
      announce(tenantId, 'chat-group.members.changed');
    },

    async listChatGroupMembers(input: { tenantId: string; chatGroupId: string }): Promise<string[]> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const chatGroupId = requireUuid(input.chatGroupId, 'chat_group_id');
      return store.listChatGroupMembers(tenantId, chatGroupId);
    },
  };
}

export type ChatGroupLibrary = ReturnType<typeof createChatGroupLibrary>;
