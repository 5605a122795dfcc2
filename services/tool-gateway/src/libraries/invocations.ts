import { createHash } from 'node:crypto';
import { AppError, publicMessageOf, requireUuid, toAppError, type AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import type { Principal } from '@portcullis/proto/common';
import type { HttpToolClient, UpstreamResponse } from './http-tool-client.js';
import type { TargetGuard } from './target-guard.js';
import { requireToolName, type ToolStore } from './tool-registry.js';

export const MAX_INPUT_BYTES = 64 * 1024;

export interface InvokeToolInput {
  tenantId: string;
  assistantId: string;
  toolName: string;
  inputJson: string;
  principal: Principal | undefined;
  /** The caller's own deadline; the upstream call never outlives it. */
  deadline?: Date | undefined;
}

export interface InvokeToolResult {
  outputJson: string;
  upstreamStatus: number;
  inputSha256: string;
  outputSha256: string;
}

export interface InvocationDeps {
  tools: Pick<ToolStore, 'findByName'>;
  guard: TargetGuard;
  http: Pick<HttpToolClient, 'post'>;
  audit: Pick<AuditPublisher, 'publish'>;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function requireJsonInput(inputJson: string): void {
  if (Buffer.byteLength(inputJson, 'utf8') > MAX_INPUT_BYTES) {
    throw new AppError('INVALID_ARGUMENT', `input_json must be at most ${MAX_INPUT_BYTES} bytes`, { details: { field: 'input_json' } });
  }
  try {
    JSON.parse(inputJson);
  } catch {
    throw new AppError('INVALID_ARGUMENT', 'input_json must be a JSON document', { details: { field: 'input_json' } });
  }
}

/** The upstream status a failed call had already received, if it got that far. */
function upstreamStatusOf(failure: AppError | undefined): number {
  const status = failure?.details?.['upstreamStatus'];
  return typeof status === 'number' ? status : 0;
}

function requirePrincipal(principal: Principal | undefined, tenantId: string): void {
  if (!principal || principal.id === '') {
    throw new AppError('INVALID_ARGUMENT', 'principal is required', { details: { field: 'principal' } });
  }
  if (principal.tenantId.toLowerCase() !== tenantId) {
    throw new AppError('CROSS_TENANT', 'principal belongs to another tenant');
  }
}

/**
 * The invocation boundary: finds the tool, checks the input, re-checks the endpoint's
 * target after DNS resolution, calls it, and records a provenance event (tool, input
 * hash, output hash, upstream status) for every call that names a tenant, whether it
 * succeeded or not. The call only succeeds once its audit event is stored.
 */
export function createInvocationLibrary({ tools, guard, http, audit }: InvocationDeps) {
  async function call(input: InvokeToolInput, tenantId: string, assistantId: string): Promise<UpstreamResponse> {
    requirePrincipal(input.principal, tenantId);
    const name = requireToolName(input.toolName);
    const tool = await tools.findByName(tenantId, assistantId, name);
    if (!tool) throw new AppError('NOT_FOUND', `tool ${name} is not registered for this assistant`);
    requireJsonInput(input.inputJson);
    const url = new URL(tool.endpointUrl);
    const verdict = await guard.check(url);
    if (!verdict.allowed) {
      throw verdict.reason === 'unresolvable'
        ? new AppError('UPSTREAM_FAILED', verdict.message)
        : new AppError('PERMISSION_DENIED', `tool target refused: ${verdict.message}`);
    }
    return http.post(url, input.inputJson, input.deadline);
  }

  return {
    async invoke(input: InvokeToolInput): Promise<InvokeToolResult> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const inputSha256 = sha256Hex(input.inputJson);

      let response: UpstreamResponse | undefined;
      let failure: AppError | undefined;
      try {
        response = await call(input, tenantId, assistantId);
      } catch (error) {
        failure = toAppError(error);
      }

      const upstreamStatus = response?.status ?? upstreamStatusOf(failure);
      const outputSha256 = response ? sha256Hex(response.body) : '';
      const succeeded = response !== undefined && response.status >= 200 && response.status < 300;
      const reason = failure ? `${failure.code}: ${publicMessageOf(failure)}` : succeeded ? '' : `upstream status ${upstreamStatus}`;
      try {
        await audit.publish({
          tenantId,
          kind: 'tool.call',
          ...(input.principal ? { principal: input.principal } : {}),
          assistantId,
          object: 'tools',
          action: 'invoke',
          outcome: succeeded ? Outcome.SUCCESS : Outcome.FAILURE,
          reason,
          attributes: {
            tool: input.toolName.slice(0, 64),
            input_sha256: inputSha256,
            output_sha256: outputSha256,
            upstream_status: upstreamStatus === 0 ? '' : String(upstreamStatus),
          },
        });
      } catch (error) {
        throw new AppError('DEPENDENCY_UNAVAILABLE', 'the audit trail did not accept the tool call record', {
          cause: error,
          ...(failure ? { details: { callError: failure.code } } : {}),
        });
      }

      if (failure || !response) throw failure ?? new AppError('INTERNAL', 'tool call produced no response');
      return { outputJson: response.body, upstreamStatus, inputSha256, outputSha256 };
    },
  };
}

export type InvocationLibrary = ReturnType<typeof createInvocationLibrary>;
