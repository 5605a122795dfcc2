import type { OpenApiDocument } from '../http/openapi.js';
import type { PublicRoute } from '../http/route.js';

/** The API's version, the OpenAPI document's `info.version`: raise it with every change a caller can see. */
export const apiVersion = '0.1.0';

/**
 * `GET /api/openapi.json`: the document of every route, this one included. It takes the document
 * as a getter because the document is generated from the finished route list, which holds this
 * route; the same object is served to every request.
 */
export function createOpenApiRoute(documentOf: () => OpenApiDocument): PublicRoute {
  return {
    // Public: it describes the API and holds no data; an unauthenticated caller learns nothing the
    // routes do not already answer (every protected one still passes the whole pipeline).
    kind: 'public',
    method: 'get',
    path: '/api/openapi.json',
    rateLimit: 'none',
    summary: 'The OpenAPI 3.1 document of this API, generated from the routes the gateway registers',
    handle() {
      return Promise.resolve({ body: documentOf() });
    },
  };
}
