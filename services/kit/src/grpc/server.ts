import type { MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { ReflectionService } from '@grpc/reflection';
import {
  Metadata,
  Server,
  ServerCredentials,
  type sendUnaryData,
  type ServerUnaryCall,
  status as GrpcStatus,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { AppError, grpcStatusOf, publicMessageOf, toAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { counterOn, histogramOn, latencyBuckets, metricNames, type Registry } from '../metrics/metrics.js';
import { extractContext, tenantAttributesOf, tracer } from '../telemetry/telemetry.js';
import { fileDescriptorProtosOf, serviceDefinitionOf, type AnyService, type MethodsOf } from './definition.js';
import { bearerTokenOf, firstString, metadataGetter, metadataKeys } from './metadata.js';
import { admits, anyPlatformService, type Caller, type CallerRule, type ServiceIdentity } from './service-credentials.js';

export interface CallContext {
  metadata: Metadata;
  requestId: string;
  /** Absolute deadline the caller set, if any. */
  deadline: Date | undefined;
  /** The authenticated caller (a platform service, or a tenant's backend on RPCs that admit one). */
  caller: Caller;
}

/** Handler map for a protobuf-es service: one async function per (unary) method. */
export type ServiceHandlers<S extends AnyService> = {
  [K in keyof MethodsOf<S>]: (
    request: MessageShape<MethodsOf<S>[K]['input']>,
    call: CallContext,
  ) => Promise<MessageInitShape<MethodsOf<S>[K]['output']>>;
};

/** Who may call each RPC; an RPC not named takes `default` (any platform service unless given). */
export type AccessRules<S extends AnyService> = { default?: CallerRule } & { [K in keyof MethodsOf<S>]?: CallerRule };

export interface ServiceRegistration<S extends AnyService = AnyService> {
  service: S;
  handlers: ServiceHandlers<S>;
  access: AccessRules<S>;
}

/** Pairs a service with its handlers and caller rules, keeping the handler types checked. */
export function implement<S extends AnyService>(
  service: S,
  handlers: ServiceHandlers<S>,
  access: AccessRules<S> = {},
): ServiceRegistration {
  return { service, handlers, access };
}

export interface GrpcServerOptions {
  logger: Logger;
  services: readonly ServiceRegistration[];
  /** Verifies the service credential every call must carry (health and reflection excepted). */
  identity: Pick<ServiceIdentity, 'verify'>;
  /**
   * Where every handled call is counted (`portcullis_grpc_server_requests_total{method,code}`)
   * and timed (`portcullis_grpc_server_duration_seconds{method}`); not measured when absent.
   */
  metrics?: Registry;
}

/** Records one handled call: its full method name, its gRPC status name (`OK`, `NOT_FOUND`…) and how long it took. */
type ObserveCall = (method: string, code: string, seconds: number) => void;

function observerOn(metrics: Registry | undefined): ObserveCall {
  if (!metrics) return () => undefined;
  const requests = counterOn(metrics, {
    name: metricNames.grpcServerRequests,
    help: 'gRPC calls handled, by full method name and gRPC status',
    labelNames: ['method', 'code'],
  });
  const duration = histogramOn(metrics, {
    name: metricNames.grpcServerDuration,
    help: 'Time to handle a gRPC call (authentication included), by full method name',
    labelNames: ['method'],
    buckets: latencyBuckets,
  });
  return (method, code, seconds) => {
    requests.inc({ method, code });
    duration.observe({ method }, seconds);
  };
}

export interface GrpcServer {
  /** Binds 127.0.0.1/0.0.0.0:port; returns the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** Marks every registered service SERVING (or NOT_SERVING) in grpc.health.v1. */
  setServing(serving: boolean): void;
  /** Stops accepting calls, lets in-flight calls finish within the budget, then forces. */
  drain(budgetMs: number): Promise<void>;
}

function deadlineOf(call: ServerUnaryCall<unknown, unknown>): Date | undefined {
  const deadline = call.getDeadline();
  if (deadline instanceof Date) return deadline;
  return Number.isFinite(deadline) ? new Date(deadline) : undefined;
}

async function authenticate(identity: GrpcServerOptions['identity'], rule: CallerRule, metadata: Metadata): Promise<Caller> {
  const token = bearerTokenOf(metadata);
  if (token === undefined) throw new AppError('UNAUTHENTICATED', 'a service credential is required');
  const caller = await identity.verify(token);
  if (!admits(rule, caller)) throw new AppError('PERMISSION_DENIED', 'this caller may not use this method');
  return caller;
}

interface WrapOptions {
  logger: Logger;
  identity: GrpcServerOptions['identity'];
  rule: CallerRule;
  spanName: string;
  handler: (request: unknown, call: CallContext) => Promise<unknown>;
  observe: ObserveCall;
}

function wrapHandler({ logger, identity, rule, spanName, handler, observe }: WrapOptions) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    const parent = extractContext(call.metadata, metadataGetter);
    const requestId = firstString(call.metadata, metadataKeys.requestId) ?? randomUUID();
    void tracer.startActiveSpan(spanName, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc' } }, parent, async (span) => {
      try {
        const caller = await authenticate(identity, rule, call.metadata);
        span.setAttribute('portcullis.caller', caller.kind === 'platform' ? caller.service : `tenant:${caller.tenantId}`);
        // The tenant (and assistant) the request names, once the caller is known: UUIDs only.
        span.setAttributes(tenantAttributesOf(call.request));
        const response = await handler(call.request, { metadata: call.metadata, requestId, deadline: deadlineOf(call), caller });
        callback(null, response);
        observe(spanName, 'OK', seconds());
      } catch (thrown) {
        const error = toAppError(thrown);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
        span.setAttribute('portcullis.error_code', error.code);
        if (error.code === 'INTERNAL') {
          logger.error({ err: thrown, method: spanName, requestId }, 'unhandled error in gRPC handler');
        }
        const trailer = new Metadata();
        trailer.set(metadataKeys.errorCode, error.code);
        const code = grpcStatusOf(error.code);
        callback({ code, details: publicMessageOf(error), metadata: trailer });
        observe(spanName, GrpcStatus[code], seconds());
      } finally {
        span.end();
      }
    });
  };
}

/**
 * A grpc-js server for protobuf-es services, with grpc.health.v1 and server reflection.
 * Every call runs in a server span whose parent is the caller's trace context.
 */
export function createGrpcServer({ logger, services, identity, metrics }: GrpcServerOptions): GrpcServer {
  const server = new Server();
  const observe = observerOn(metrics);
  const names = services.map(({ service }) => service.typeName);
  const health = new HealthImplementation(Object.fromEntries(['', ...names].map((name) => [name, 'NOT_SERVING'])));
  health.addToServer(server);

  for (const { service, handlers, access } of services) {
    const implementation: UntypedServiceImplementation = {};
    const rules = access as Record<string, CallerRule | undefined>;
    for (const method of service.methods) {
      const handler = (handlers as Record<string, (request: unknown, call: CallContext) => Promise<unknown>>)[method.localName];
      if (!handler) throw new Error(`${service.typeName}.${method.name} has no handler`);
      const rule = rules[method.localName] ?? rules['default'] ?? anyPlatformService;
      implementation[method.localName] = wrapHandler({
        logger,
        identity,
        rule,
        spanName: `${service.typeName}/${method.name}`,
        handler,
        observe,
      });
    }
    server.addService(serviceDefinitionOf(service), implementation);
  }

  const descriptors = fileDescriptorProtosOf(services.map(({ service }) => service));
  const reflection = new ReflectionService({
    files: { format: 'Protocol Buffer 3 DescriptorProto', type: {}, fileDescriptorProtos: descriptors },
  } as never);
  reflection.addToServer(server);

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (error, boundPort) => {
          if (error) reject(error);
          else resolve(boundPort);
        });
      });
    },
    setServing(serving) {
      for (const name of ['', ...names]) health.setStatus(name, serving ? 'SERVING' : 'NOT_SERVING');
    },
    drain(budgetMs) {
      for (const name of ['', ...names]) health.setStatus(name, 'NOT_SERVING');
      return new Promise((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, budgetMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
