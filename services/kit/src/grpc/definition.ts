import {
  create,
  fromBinary,
  toBinary,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

export type AnyService = GenService<GenServiceMethods>;
export type MethodsOf<S extends AnyService> = S extends GenService<infer R> ? R : never;

/** `/package.Service/Method`, the HTTP/2 path grpc-js routes on. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function serializer<D extends DescMessage>(schema: D) {
  return (value: MessageInitShape<D>): Buffer => Buffer.from(toBinary(schema, create(schema, value)));
}

function deserializer<D extends DescMessage>(schema: D) {
  return (bytes: Buffer): MessageShape<D> => fromBinary(schema, bytes);
}

/**
 * A grpc-js service definition derived from a protobuf-es service descriptor: the same
 * binary encoding protobuf-es generates, so the .proto stays the only source of truth.
 * Only unary methods are supported; any other kind is rejected loudly.
 */
export function serviceDefinitionOf(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') {
      throw new Error(`${service.typeName}.${method.name}: only unary methods are supported`);
    }
    definition[method.localName] = {
      path: methodPath(method),
      requestStream: false,
      responseStream: false,
      requestSerialize: serializer(method.input) as (value: unknown) => Buffer,
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output) as (value: unknown) => Buffer,
      responseDeserialize: deserializer(method.output),
    };
  }
  return definition;
}

/** The file of a service and every file it imports, each once, encoded as FileDescriptorProto. */
export function fileDescriptorProtosOf(services: readonly DescService[]): Buffer[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (seen.has(file.name)) return;
    seen.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  services.forEach((service) => visit(service.file));
  return [...seen.values()].map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
}
