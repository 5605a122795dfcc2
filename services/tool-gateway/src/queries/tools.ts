import { AppError, type TenantScope } from '@portcullis/kit';
import { Prisma } from '../generated/prisma/client.js';
import type { NewTool, ToolRecord, ToolStore } from '../libraries/tool-registry.js';

export type Tx = Prisma.TransactionClient;

const columns = {
  id: true,
  tenantId: true,
  assistantId: true,
  name: true,
  description: true,
  endpointUrl: true,
  capability: true,
} as const;

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';
}

export function createToolQueries(scope: TenantScope<Tx>) {
  return {
    async create(tenantId: string, tool: NewTool): Promise<ToolRecord> {
      try {
        return await scope.run(tenantId, (tx) => tx.tool.create({ data: { tenantId, ...tool }, select: columns }));
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new AppError('ALREADY_EXISTS', `a tool named ${tool.name} already exists for this assistant`, { cause: error });
        }
        throw error;
      }
    },
    listForAssistant(tenantId: string, assistantId: string): Promise<ToolRecord[]> {
      return scope.run(tenantId, (tx) => tx.tool.findMany({ where: { tenantId, assistantId }, select: columns, orderBy: { name: 'asc' } }));
    },
    async findByName(tenantId: string, assistantId: string, name: string): Promise<ToolRecord | undefined> {
      const tool = await scope.run(tenantId, (tx) => tx.tool.findFirst({ where: { tenantId, assistantId, name }, select: columns }));
      return tool ?? undefined;
    },
  } satisfies ToolStore;
}

export type ToolQueries = ReturnType<typeof createToolQueries>;
