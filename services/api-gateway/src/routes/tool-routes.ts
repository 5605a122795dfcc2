import { AppError, z, type GrpcClient } from '@portcullis/kit';
import type { ToolGatewayService, Tool } from '@portcullis/proto/tools';
import { parseInput, type ProtectedRoute } from '../http/route.js';

export interface ToolRouteDeps {
  tools: Pick<GrpcClient<typeof ToolGatewayService>, 'registerTool' | 'listTools' | 'invokeTool'>;
}

function presentTool(tool: Tool) {
  return { toolId: tool.id, name: tool.name, description: tool.description, endpointUrl: tool.endpointUrl, capability: tool.capability };
}

export function createToolRoutes({ tools }: ToolRouteDeps): ProtectedRoute[] {
  return [
    {
      kind: 'protected',
      method: 'get',
      path: '/api/tools',
      capability: { object: 'tools', action: 'read' },
      needsAssistant: true,
      summary: "List the assistant's tools",
      async handle({ request, target }) {
        const result = await tools.listTools(
          { tenantId: target.tenantId, assistantId: target.assistantId },
          { requestId: request.requestId },
        );
        return { body: { tools: result.tools.map(presentTool) } };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/tools',
      capability: { object: 'tools', action: 'manage' },
      needsAssistant: true,
      summary: 'Register an HTTP tool on the assistant',
      async handle({ request, target }, { body }) {
        const input = parseInput(
          z.object({ name: z.string().min(1).max(64), description: z.string().max(500).default(''), endpointUrl: z.url().max(2000) }),
          body,
        );
        const { tool } = await tools.registerTool(
          { tenantId: target.tenantId, assistantId: target.assistantId, ...input, capability: 'tools:invoke' },
          { requestId: request.requestId },
        );
        if (!tool) throw new AppError('INTERNAL', 'tool gateway returned no tool');
        return { status: 201, body: presentTool(tool) };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/tools/:name/invoke',
      capability: { object: 'tools', action: 'invoke' },
      needsAssistant: true,
      summary: 'Invoke a tool of the assistant with a JSON input',
      async handle({ request, target, principal }, { body, params }) {
        const { name } = parseInput(z.object({ name: z.string().min(1).max(64) }), params);
        const input = parseInput(z.object({ input: z.json().default({}) }), body);
        const result = await tools.invokeTool(
          { tenantId: target.tenantId, assistantId: target.assistantId, toolName: name, inputJson: JSON.stringify(input.input), principal },
          { requestId: request.requestId },
        );
        return {
          body: {
            output: JSON.parse(result.outputJson) as unknown,
            upstreamStatus: result.upstreamStatus,
            inputSha256: result.inputSha256,
            outputSha256: result.outputSha256,
          },
        };
      },
    },
  ];
}
