import { AppError, requireUuid } from '@portcullis/kit';
import { parseEndpointUrl, type TargetGuard } from './target-guard.js';

export interface ToolRecord {
  id: string;
  tenantId: string;
  assistantId: string;
  name: string;
  description: string;
  endpointUrl: string;
  capability: string;
}

export type NewTool = Omit<ToolRecord, 'id' | 'tenantId'>;

/** Where tools are kept; every call is scoped to one tenant. */
export interface ToolStore {
  /** Stores a tool; a name already used by the assistant is ALREADY_EXISTS. */
  create(tenantId: string, tool: NewTool): Promise<ToolRecord>;
  listForAssistant(tenantId: string, assistantId: string): Promise<ToolRecord[]>;
  findByName(tenantId: string, assistantId: string, name: string): Promise<ToolRecord | undefined>;
}

export interface RegisterToolInput {
  tenantId: string;
  assistantId: string;
  name: string;
  description: string;
  endpointUrl: string;
  capability: string;
}

export const DEFAULT_CAPABILITY = 'tools:invoke';
const TOOL_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const CAPABILITY = /^[a-z][a-z0-9_-]{0,63}:[a-z][a-z0-9_-]{0,63}$/;
const MAX_DESCRIPTION = 1000;

/** A tool name as registered: lower-case letters, digits, `_ . -`, at most 64 characters. */
export function requireToolName(name: string): string {
  if (!TOOL_NAME.test(name)) {
    throw new AppError('INVALID_ARGUMENT', 'name must match ^[a-z0-9][a-z0-9_.-]{0,63}$', { details: { field: 'name' } });
  }
  return name;
}

/** `object:action`; an empty capability means the default `tools:invoke`. */
export function requireCapability(capability: string): string {
  const value = capability.trim();
  if (value === '') return DEFAULT_CAPABILITY;
  if (!CAPABILITY.test(value)) {
    throw new AppError('INVALID_ARGUMENT', 'capability must look like object:action', { details: { field: 'capability' } });
  }
  return value;
}

export interface ToolRegistryDeps {
  store: ToolStore;
  guard: TargetGuard;
}

/** The per-assistant tool registry: validates a tool, its endpoint and its target before storing it. */
export function createToolRegistry({ store, guard }: ToolRegistryDeps) {
  return {
    async register(input: RegisterToolInput): Promise<ToolRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const name = requireToolName(input.name);
      const description = input.description.trim();
      if (description.length > MAX_DESCRIPTION) {
        throw new AppError('INVALID_ARGUMENT', `description must be at most ${MAX_DESCRIPTION} characters`, {
          details: { field: 'description' },
        });
      }
      const capability = requireCapability(input.capability);
      const url = parseEndpointUrl(input.endpointUrl);
      const verdict = await guard.check(url);
      if (!verdict.allowed) {
        throw new AppError('INVALID_ARGUMENT', verdict.message, { details: { field: 'endpoint_url' } });
      }
      return store.create(tenantId, { assistantId, name, description, endpointUrl: url.toString(), capability });
    },

    async list(tenantIdInput: string, assistantIdInput: string): Promise<ToolRecord[]> {
      const tenantId = requireUuid(tenantIdInput, 'tenant_id');
      const assistantId = requireUuid(assistantIdInput, 'assistant_id');
      return await store.listForAssistant(tenantId, assistantId);
    },
  };
}

export type ToolRegistry = ReturnType<typeof createToolRegistry>;
