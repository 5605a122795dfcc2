import { AppError, type TenantScope } from '@portcullis/kit';
import type { ChatGroupStore } from '../libraries/chat-groups.js';
import { isForeignKeyViolation, isUniqueViolation, type Tx } from './rows.js';

const groupColumns = { id: true, tenantId: true, assistantId: true, name: true } as const;

const notAMember = () => new AppError('FAILED_PRECONDITION', 'the user is not a member of this tenant', { details: { field: 'user_id' } });
const assistantNotFound = () => new AppError('NOT_FOUND', 'assistant not found');
const groupNotFound = () => new AppError('NOT_FOUND', 'chat group not found');

/** Chat groups and their members, each read and write inside the tenant's RLS scope. */
export function createChatGroupQueries(scope: TenantScope<Tx>): ChatGroupStore {
  // RLS hides other tenants' rows, so "not ours" and "does not exist" look the same.
  const requireAssistant = async (tx: Tx, assistantId: string) => {
    const assistant = await tx.assistant.findUnique({ where: { id: assistantId }, select: { id: true } });
    if (!assistant) throw assistantNotFound();
  };
  const requireGroup = async (tx: Tx, chatGroupId: string) => {
    const group = await tx.chatGroup.findUnique({ where: { id: chatGroupId }, select: { id: true } });
    if (!group) throw groupNotFound();
  };

  return {
    async insertChatGroup(tenantId, assistantId, name) {
      try {
        return await scope.run(tenantId, async (tx) => {
          await requireAssistant(tx, assistantId);
          return await tx.chatGroup.create({ data: { tenantId, assistantId, name }, select: groupColumns });
        });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new AppError('ALREADY_EXISTS', 'the assistant already has a chat group of that name', { details: { field: 'name' } });
        }
        // The assistant went away between the check and the insert.
        if (isForeignKeyViolation(error)) throw assistantNotFound();
        throw error;
      }
    },

    listChatGroups(tenantId, assistantId) {
      return scope.run(tenantId, async (tx) => {
        await requireAssistant(tx, assistantId);
        return tx.chatGroup.findMany({
          where: { tenantId, assistantId },
          select: groupColumns,
          orderBy: [{ name: 'asc' }, { id: 'asc' }],
        });
      });
    },

    async insertChatGroupMember(tenantId, chatGroupId, userId) {
      try {
        return await scope.run(tenantId, async (tx) => {
          await requireGroup(tx, chatGroupId);
          const member = await tx.membership.findUnique({ where: { tenantId_userId: { tenantId, userId } }, select: { userId: true } });
          if (!member) throw notAMember();
          const { count } = await tx.chatGroupMember.createMany({ data: [{ tenantId, chatGroupId, userId }], skipDuplicates: true });
          return count > 0;
        });
      } catch (error) {
        // The membership (or the group) went away between the check and the insert.
        if (isForeignKeyViolation(error)) throw notAMember();
        throw error;
      }
    },

    deleteChatGroupMember(tenantId, chatGroupId, userId) {
      return scope.run(tenantId, async (tx) => {
        const { count } = await tx.chatGroupMember.deleteMany({ where: { tenantId, chatGroupId, userId } });
        return count > 0;
      });
    },

    listChatGroupMembers(tenantId, chatGroupId) {
      return scope.run(tenantId, async (tx) => {
        await requireGroup(tx, chatGroupId);
        const rows = await tx.chatGroupMember.findMany({
          where: { tenantId, chatGroupId },
          select: { userId: true },
          orderBy: { userId: 'asc' },
        });
        return rows.map((row) => row.userId);
      });
    },
  };
}

export type ChatGroupQueries = ReturnType<typeof createChatGroupQueries>;
