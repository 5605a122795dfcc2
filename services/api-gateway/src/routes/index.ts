import { createOpenApiDocument } from '../http/openapi.js';
import type { ProtectedRoute, PublicRoute } from '../http/route.js';
import { createAccessRoutes, type AccessRouteDeps } from './access-routes.js';
import { createApiKeyRoutes, type ApiKeyRouteDeps } from './api-key-routes.js';
import { createAuditRoutes, type AuditRouteDeps } from './audit-routes.js';
import { createDeviceRoutes, type DeviceRouteDeps } from './device-routes.js';
import { apiVersion, createOpenApiRoute } from './openapi-route.js';
import { createPublicRoutes, type PublicRouteDeps } from './public-routes.js';
import { createRecordRoutes, type RecordRouteDeps } from './record-routes.js';
import { createRobotRoutes, type RobotRouteDeps } from './robot-routes.js';
import { createServiceTokenRoutes, type ServiceTokenRouteDeps } from './service-token-routes.js';
import { createSessionRoutes, type SessionRouteDeps } from './session-routes.js';
import { createTenantRoutes, type TenantRouteDeps } from './tenant-routes.js';
import { createToolRoutes, type ToolRouteDeps } from './tool-routes.js';

/** What every route of the gateway needs, by route group. */
export interface RouteDeps {
  public: PublicRouteDeps;
  sessions: SessionRouteDeps;
  apiKeys: ApiKeyRouteDeps;
  robots: RobotRouteDeps;
  serviceTokens: ServiceTokenRouteDeps;
  access: AccessRouteDeps;
  tenants: TenantRouteDeps;
  tools: ToolRouteDeps;
  devices: DeviceRouteDeps;
  audit: AuditRouteDeps;
  records: RecordRouteDeps;
}

export interface Routes {
  /** The allow-list of routes outside the pipeline (src/routes/public-routes.ts). */
  publicRoutes: PublicRoute[];
  /** Every other route: behind the whole ordered pipeline. */
  protectedRoutes: ProtectedRoute[];
}

/**
 * Every route the gateway serves, in one list: main.ts registers exactly these, and the
 * OpenAPI document and the per-route security suite are built from the same list.
 */
export function createRoutes(deps: RouteDeps): Routes {
  const routes: Routes = {
    // The OpenAPI route serves the document of this whole list, itself included (built below).
    publicRoutes: [...createPublicRoutes(deps.public), createOpenApiRoute(() => openApiDocument)],
    protectedRoutes: [
      ...createSessionRoutes(deps.sessions),
      ...createApiKeyRoutes(deps.apiKeys),
      ...createRobotRoutes(deps.robots),
      ...createServiceTokenRoutes(deps.serviceTokens),
      ...createAccessRoutes(deps.access),
      ...createTenantRoutes(deps.tenants),
      ...createToolRoutes(deps.tools),
      ...createDeviceRoutes(deps.devices),
      ...createAuditRoutes(deps.audit),
      ...createRecordRoutes(deps.records),
    ],
  };
  const openApiDocument = createOpenApiDocument({
    ...routes,
    version: apiVersion,
    sessionCookieName: deps.public.cookieSessions.names.access,
  });
  return routes;
}
