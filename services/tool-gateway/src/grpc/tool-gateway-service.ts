import { implement } from '@portcullis/kit';
import { ToolGatewayService } from '@portcullis/proto/tools';
import type { InvocationLibrary } from '../libraries/invocations.js';
import type { ToolRecord, ToolRegistry } from '../libraries/tool-registry.js';

export interface ToolGatewayServiceDeps {
  registry: ToolRegistry;
  invocations: InvocationLibrary;
}

function toolMessage({ id, tenantId, assistantId, name, description, endpointUrl, capability }: ToolRecord) {
  return { id, tenantId, assistantId, name, description, endpointUrl, capability };
}

export function createToolGatewayService({ registry, invocations }: ToolGatewayServiceDeps) {
  return implement(ToolGatewayService, {
    async registerTool(request) {
      return { tool: toolMessage(await registry.register(request)) };
    },
    async listTools(request) {
      const tools = await registry.list(request.tenantId, request.assistantId);
      return { tools: tools.map(toolMessage) };
    },
    invokeTool(request, call) {
      return invocations.invoke({
        tenantId: request.tenantId,
        assistantId: request.assistantId,
        toolName: request.toolName,
        inputJson: request.inputJson,
        principal: request.principal,
        deadline: call.deadline,
      });
    },
  });
}
