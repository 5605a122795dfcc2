import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AppError, capabilityNamePattern, z, type GrpcClient } from '@portcullis/kit';
import { ApiKeyKind, type ApiKey, type AuthService } from '@portcullis/proto/auth';
import type { PolicyService } from '@portcullis/proto/policy';
import { isoTime } from '../http/presenters.js';
import { parseInput, type ProtectedRoute } from '../http/route.js';
import type { AuthorizedContext } from '../pipeline/index.js';

export interface ApiKeyRouteDeps {
  auth: Pick<GrpcClient<typeof AuthService>, 'createApiKey' | 'listApiKeys' | 'revokeApiKey' | 'rotateApiKey'>;
  policy: Pick<GrpcClient<typeof PolicyService>, 'check'>;
}

const scope = z.string().regex(capabilityNamePattern, 'a capability object:action');
const keyId = z.object({ id: z.string().regex(/^[a-z0-9]{16}$/, 'an API key id') });

function presentApiKey(key: ApiKey | undefined) {
  if (!key) throw new AppError('INTERNAL', 'auth returned no API key');
  return {
    id: key.keyId,
    kind: key.kind === ApiKeyKind.TENANT ? 'tenant' : 'user',
    userId: key.userId || null,
    createdBy: key.createdBy,
    name: key.name,
    scopes: key.scopes,
    createdAt: isoTime(key.createdAt),
    expiresAt: isoTime(key.expiresAt),
    revokedAt: isoTime(key.revokedAt),
    lastUsedAt: isoTime(key.lastUsedAt),
    graceUntil: isoTime(key.graceUntil),
    rotatedFrom: key.rotatedFrom || null,
  };
}

/**
 * API keys of the tenant. Only signed-in people manage keys (a key cannot mint keys). Every
 * role holds `apikeys:own` (its own user keys); creating a tenant key also needs
 * `apikeys:manage`, and auth re-checks the actor's role. Every scope of a new key must be a
 * capability the creator holds now (asked of the policy, so an unknown capability is refused):
 * nobody hands out more than they have.
 */
export function createApiKeyRoutes({ auth, policy }: ApiKeyRouteDeps): ProtectedRoute[] {
  const capability = { object: 'apikeys', action: 'own' };

  async function requireHeld(context: AuthorizedContext, object: string, action: string): Promise<void> {
    const { allowed } = await policy.check(
      { principal: context.principal, tenantId: context.target.tenantId, assistantId: '', object, action },
      { requestId: context.request.requestId },
    );
    if (!allowed) throw new AppError('PERMISSION_DENIED', `you do not hold ${object}:${action}`);
  }

  return [
    {
      kind: 'protected',
      method: 'post',
      path: '/api/api-keys',
      capability,
      humansOnly: true,
      summary: 'Create an API key (the key is in this answer only)',
      async handle(context, { body }) {
        const input = parseInput(
          z.object({
            kind: z.enum(['tenant', 'user']),
            name: z.string().trim().min(1).max(100),
            scopes: z.array(scope).min(1).max(64),
            expiresAt: z.iso.datetime({ offset: true }).optional(),
          }),
          body,
        );
        if (input.kind === 'tenant') await requireHeld(context, 'apikeys', 'manage');
        for (const wanted of new Set(input.scopes)) {
          const [object = '', action = ''] = wanted.split(':');
          await requireHeld(context, object, action);
        }
        const { apiKey, key } = await auth.createApiKey(
          {
            tenantId: context.target.tenantId,
            actor: context.principal,
            kind: input.kind === 'tenant' ? ApiKeyKind.TENANT : ApiKeyKind.USER,
            name: input.name,
            scopes: input.scopes,
            expiresAt: input.expiresAt === undefined ? undefined : timestampFromDate(new Date(input.expiresAt)),
          },
          { requestId: context.request.requestId },
        );
        return { status: 201, body: { apiKey: presentApiKey(apiKey), key } };
      },
    },
    {
      kind: 'protected',
      method: 'get',
      path: '/api/api-keys',
      capability,
      humansOnly: true,
      summary: 'List the API keys you may manage (never their secrets)',
      async handle({ request, target, principal }) {
        const { apiKeys } = await auth.listApiKeys({ tenantId: target.tenantId, actor: principal }, { requestId: request.requestId });
        return { body: { apiKeys: apiKeys.map(presentApiKey) } };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/api-keys/:id/rotate',
      capability,
      humansOnly: true,
      summary: 'Replace an API key; the old one keeps working for graceSeconds (the new key is in this answer only)',
      async handle({ request, target, principal }, { body, params }) {
        const { id } = parseInput(keyId, params);
        const input = parseInput(z.object({ graceSeconds: z.number().int().min(0).max(604_800).default(0) }), body);
        const { apiKey, key } = await auth.rotateApiKey(
          { tenantId: target.tenantId, actor: principal, keyId: id, graceSeconds: input.graceSeconds },
          { requestId: request.requestId },
        );
        return { status: 201, body: { apiKey: presentApiKey(apiKey), key } };
      },
    },
    {
      kind: 'protected',
      method: 'delete',
      path: '/api/api-keys/:id',
      capability,
      humansOnly: true,
      summary: 'Revoke an API key at once',
      async handle({ request, target, principal }, { params }) {
        const { id } = parseInput(keyId, params);
        await auth.revokeApiKey({ tenantId: target.tenantId, actor: principal, keyId: id }, { requestId: request.requestId });
        return { status: 204, body: null };
      },
    },
  ];
}
