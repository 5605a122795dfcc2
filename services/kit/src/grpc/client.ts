import { create, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { Client, connectivityState, credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AppError, codeOfGrpcStatus, isAppErrorCode } from '../errors.js';
import { counterOn, metricNames, type Registry } from '../metrics/metrics.js';
import { injectContext, tracer } from '../telemetry/telemetry.js';
import { methodPath, serviceDefinitionOf, type AnyService, type MethodsOf } from './definition.js';
import { firstString, metadataKeys, metadataSetter } from './metadata.js';
import type { ServiceCredential } from './service-credentials.js';

export interface CallOptions {
  /** Per-call deadline; defaults to the client's. */
  deadlineMs?: number;
  requestId?: string;
}

/** Promise-based client: one method per unary RPC, typed from the protobuf-es descriptor. */
export type GrpcClient<S extends AnyService> = {
  [K in keyof MethodsOf<S>]: (
    request: MessageInitShape<MethodsOf<S>[K]['input']>,
    options?: CallOptions,
  ) => Promise<MessageShape<MethodsOf<S>[K]['output']>>;
} & {
  close(): void;
  /**
   * Whether the channel holds a live connection now (READY). False before the first call, and
   * from the moment the connection is lost until a call connects again: callers that cache the
   * service's answers stop serving them while it is false, so an outage is never papered over.
   */
  isConnected(): boolean;
};

export interface GrpcClientOptions {
  address: string;
  /** Default deadline for every call; no call is ever made without one. */
  deadlineMs: number;
  /** The service credential sent with every call (`identity.credentialFor(<service>)`); 'none' only to test refusals. */
  credential: ServiceCredential | 'none';
  /**
   * Where every call is counted, `portcullis_grpc_client_requests_total{target,method,code}`
   * (target: the service's full name; code: the gRPC status name); not counted when absent.
   */
  metrics?: Registry;
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number';
}

/** Converts a failed call into an AppError, keeping the server's own code when it sent one. */
export function appErrorFromServiceError(error: ServiceError, target: string): AppError {
  const sent = firstString(error.metadata, metadataKeys.errorCode);
  const code = isAppErrorCode(sent) ? sent : codeOfGrpcStatus(error.code);
  // The server's own message is meant for callers; otherwise say what failed without naming
  // internal services (the target stays in the details for logs).
  const message =
    sent !== undefined
      ? error.details
      : code === 'DEPENDENCY_UNAVAILABLE'
        ? 'a required service is unavailable'
        : code === 'DEADLINE_EXCEEDED'
          ? 'a required service did not answer in time'
          : 'a required service call failed';
  return new AppError(code, message, { cause: error, details: { target } });
}

export function createGrpcClient<S extends AnyService>(
  service: S,
  { address, deadlineMs, credential, metrics }: GrpcClientOptions,
): GrpcClient<S> {
  const client = new Client(address, credentials.createInsecure());
  const requests = metrics
    ? counterOn(metrics, {
        name: metricNames.grpcClientRequests,
        help: 'gRPC calls made, by target service, method and gRPC status',
        labelNames: ['target', 'method', 'code'],
      })
    : undefined;
  const definition = serviceDefinitionOf(service);
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    const def = definition[method.localName];
    if (!def) continue;
    const spanName = `${service.typeName}/${method.name}`;
    const count = (code: string) => requests?.inc({ target: service.typeName, method: method.name, code });
    methods[method.localName] = (request: MessageInitShape<typeof method.input>, options: CallOptions = {}) =>
      tracer.startActiveSpan(
        spanName,
        { kind: SpanKind.CLIENT, attributes: { 'rpc.system': 'grpc', 'net.peer.name': address } },
        async (span) => {
          const metadata = new Metadata();
          injectContext(metadata, metadataSetter, trace.setSpan(context.active(), span));
          if (options.requestId) metadata.set(metadataKeys.requestId, options.requestId);
          const deadline = new Date(Date.now() + (options.deadlineMs ?? deadlineMs));
          if (credential !== 'none') {
            try {
              metadata.set(metadataKeys.authorization, `Bearer ${await credential()}`);
            } catch (error) {
              span.setStatus({ code: SpanStatusCode.ERROR, message: 'INTERNAL' });
              span.end();
              count('INTERNAL');
              throw new AppError('INTERNAL', 'could not sign the service credential', { cause: error });
            }
          }
          return new Promise<unknown>((resolve, reject) => {
            client.makeUnaryRequest(
              methodPath(method),
              def.requestSerialize,
              def.responseDeserialize,
              create(method.input, request),
              metadata,
              { deadline },
              (error, response) => {
                if (error) {
                  const appError = isServiceError(error)
                    ? appErrorFromServiceError(error, service.typeName)
                    : new AppError('INTERNAL', 'gRPC call failed', { cause: error });
                  span.setStatus({ code: SpanStatusCode.ERROR, message: appError.code });
                  span.end();
                  count(isServiceError(error) ? GrpcStatus[error.code] : 'INTERNAL');
                  reject(appError);
                } else {
                  span.end();
                  count('OK');
                  resolve(response);
                }
              },
            );
          });
        },
      );
  }
  methods['close'] = () => client.close();
  methods['isConnected'] = () => client.getChannel().getConnectivityState(false) === connectivityState.READY;
  return methods as GrpcClient<S>;
}
