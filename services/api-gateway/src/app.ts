import express, { type Express } from 'express';
import { AppError, type Logger } from '@portcullis/kit';
import { parseCookieHeader } from './http/cookies.js';
import { errorHandler, notFound, requestContext, requestInfoOf } from './http/middleware.js';
import type { ProtectedRoute, PublicRoute, Route, RouteInput, RouteResult } from './http/route.js';
import type { Pipeline } from './pipeline/index.js';

export interface AppDeps {
  logger: Logger;
  pipeline: Pipeline;
  publicRoutes: readonly PublicRoute[];
  protectedRoutes: readonly ProtectedRoute[];
  bodyLimitBytes: number;
}

async function dispatch(
  pipeline: Pipeline,
  route: Route,
  request: ReturnType<typeof requestInfoOf>,
  input: RouteInput,
): Promise<RouteResult> {
  if (route.kind === 'public') {
    return route.handle({ request, resolveContext: () => pipeline.resolveContext(request) }, input);
  }
  const authorized = await pipeline.run(request, route.capability);
  if (route.humansOnly && authorized.credential.kind !== 'access_token') {
    throw new AppError('PERMISSION_DENIED', 'this route needs a signed-in person; API keys and robot tokens cannot use it');
  }
  if (route.needsAssistant && !authorized.target.assistantId) {
    throw new AppError('INVALID_ARGUMENT', "this route acts on an assistant: send it to the assistant's domain or set X-Assistant-Id");
  }
  return route.handle(authorized, input);
}

/** The gateway's Express app: request context, the routes, and the error envelope. */
export function createApp({ logger, pipeline, publicRoutes, protectedRoutes, bodyLimitBytes }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(requestContext());
  app.use(express.json({ limit: bodyLimitBytes, strict: true }));
  for (const route of [...publicRoutes, ...protectedRoutes]) {
    app[route.method](route.path, async (req, res) => {
      const queryStart = req.originalUrl.indexOf('?');
      const input: RouteInput = {
        body: req.body as unknown,
        params: req.params as Record<string, string>,
        query: req.query,
        rawQuery: queryStart === -1 ? '' : req.originalUrl.slice(queryStart + 1),
        cookies: parseCookieHeader(req.header('cookie')),
        setCookie: (cookie) => res.append('Set-Cookie', cookie),
      };
      const result = await dispatch(pipeline, route, requestInfoOf(req), input);
      if (result.redirectTo !== undefined) res.redirect(302, result.redirectTo);
      else if (result.status === 204) res.status(204).end();
      else res.status(result.status ?? 200).json(result.body);
    });
  }
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
