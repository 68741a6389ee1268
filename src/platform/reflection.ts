/**
 * gRPC server reflection (`grpc.reflection.v1` and `grpc.reflection.v1alpha`), served from a
 * protobuf FileDescriptorSet such as the one `buf build` writes to `src/gen/descriptors.binpb`.
 *
 * We do not use `@grpc/reflection`: it serves file descriptors without their `dependency` lists
 * (and may rename files), so grpcurl cannot resolve imported types such as
 * `google.protobuf.Timestamp`. Here every file is served exactly as the compiler described it,
 * with the files it imports.
 */
import * as grpc from '@grpc/grpc-js';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
  type FileDescriptorSet,
} from '@bufbuild/protobuf/wkt';
import {
  ServerReflectionService as ServerReflectionV1Service,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
  type ServerReflectionServer,
} from '../gen/grpc/reflection/v1/reflection';
import { ServerReflectionService as ServerReflectionV1AlphaService } from '../gen/grpc/reflection/v1alpha/reflection';

/** What the reflection service answers with for one request; a `ServerReflectionResponse.message_response`. */
type ReflectionAnswer = NonNullable<ServerReflectionResponse['messageResponse']>;

/** Everything reflection looks up, computed once from the descriptor set when the service is added. */
interface DescriptorIndex {
  /** Each file's descriptor and its serialized form, by file name (e.g. `google/protobuf/timestamp.proto`). */
  readonly filesByName: ReadonlyMap<string, IndexedFile>;
  /** The name of the file that declares each fully qualified symbol (without a leading dot). */
  readonly fileNameBySymbol: ReadonlyMap<string, string>;
  /** Fully qualified names of every message type, nested ones included. */
  readonly messageNames: ReadonlySet<string>;
  /** For each extended message type, the file declaring each extension, by field number. */
  readonly extensionFileNamesByType: ReadonlyMap<string, ReadonlyMap<number, string>>;
  /** Fully qualified names of every service, in the order of the descriptor set. */
  readonly serviceNames: readonly string[];
}

interface IndexedFile {
  readonly descriptor: FileDescriptorProto;
  readonly serialized: Uint8Array;
}

/**
 * Registers `grpc.reflection.v1.ServerReflection` and `grpc.reflection.v1alpha.ServerReflection`
 * on `server`, answering from `descriptorSet`.
 *
 * The set must be closed under imports (every `dependency` of every file present), as
 * `buf build` output is; otherwise this throws, because clients would fail later with
 * "cannot resolve type". Include the reflection and health protos in it so clients can describe
 * those services too.
 *
 * `list_services` answers with the services registered on `server` at the time of the request,
 * so add this before or after the other services, in any order.
 *
 * @param server - the server to add both reflection services to.
 * @param descriptorSet - a serialized `google.protobuf.FileDescriptorSet`, or one already parsed
 *   with `@bufbuild/protobuf`.
 * @throws Error when the set repeats a file or a symbol, or lacks a file that another imports.
 */
export function addReflectionService(server: grpc.Server, descriptorSet: Uint8Array | FileDescriptorSet): void {
  const parsedSet =
    descriptorSet instanceof Uint8Array ? fromBinary(FileDescriptorSetSchema, descriptorSet) : descriptorSet;
  const index = indexDescriptorSet(parsedSet);
  const implementation: ServerReflectionServer = {
    serverReflectionInfo: (call) => serveReflectionStream(call, index, () => listServedServiceNames(server, index)),
  };
  server.addService(ServerReflectionV1Service, implementation);
  // The v1alpha messages are wire-identical to v1 and ts-proto gives them identical shapes, so
  // one implementation serves both; many clients, older grpcurl releases among them, speak only v1alpha.
  server.addService(ServerReflectionV1AlphaService, implementation);
}

/**
 * Answers one reflection stream: one response per request, in order. Files already sent on this
 * stream are not sent again as dependencies, as the protocol allows, because clients cache them.
 */
function serveReflectionStream(
  call: grpc.ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>,
  index: DescriptorIndex,
  listServiceNames: () => string[],
): void {
  const sentFileNames = new Set<string>();
  let hasFailed = false;
  call.on('data', (request: ServerReflectionRequest) => {
    if (hasFailed) return;
    let answer: ReflectionAnswer;
    try {
      answer = answerReflectionRequest(request, index, sentFileNames, listServiceNames);
    } catch {
      // A throw here is a defect in this module; ending the call keeps the server process alive.
      hasFailed = true;
      call.emit('error', { code: grpc.status.INTERNAL, details: 'server reflection failed' });
      return;
    }
    const response: ServerReflectionResponse = {
      validHost: request.host,
      originalRequest: request,
      messageResponse: answer,
    };
    // Stop reading while the client is not reading, so a client that only sends cannot make the
    // server buffer responses without bound.
    if (!call.write(response)) {
      call.pause();
      call.once('drain', () => call.resume());
    }
  });
  call.on('end', () => call.end());
}

function answerReflectionRequest(
  request: ServerReflectionRequest,
  index: DescriptorIndex,
  sentFileNames: Set<string>,
  listServiceNames: () => string[],
): ReflectionAnswer {
  const messageRequest = request.messageRequest;
  switch (messageRequest?.$case) {
    case 'listServices':
      return { $case: 'listServicesResponse', value: { service: listServiceNames().map((name) => ({ name })) } };
    case 'fileByFilename': {
      const fileName = messageRequest.value;
      if (!index.filesByName.has(fileName)) return notFound(`file not found: ${fileName}`);
      return fileDescriptorAnswer(fileName, index, sentFileNames);
    }
    case 'fileContainingSymbol': {
      const fileName = index.fileNameBySymbol.get(messageRequest.value);
      if (fileName === undefined) return notFound(`symbol not found: ${messageRequest.value}`);
      return fileDescriptorAnswer(fileName, index, sentFileNames);
    }
    case 'fileContainingExtension': {
      const { containingType, extensionNumber } = messageRequest.value;
      const fileName = index.extensionFileNamesByType.get(containingType)?.get(extensionNumber);
      if (fileName === undefined) return notFound(`extension not found: ${containingType} field ${extensionNumber}`);
      return fileDescriptorAnswer(fileName, index, sentFileNames);
    }
    case 'allExtensionNumbersOfType': {
      const typeName = messageRequest.value;
      if (!index.messageNames.has(typeName)) return notFound(`message type not found: ${typeName}`);
      const extensionNumbers = [...(index.extensionFileNamesByType.get(typeName)?.keys() ?? [])].sort((a, b) => a - b);
      return {
        $case: 'allExtensionNumbersResponse',
        value: { baseTypeName: typeName, extensionNumber: extensionNumbers },
      };
    }
    case undefined:
      // An empty request, or one a newer protocol version added: answer it and keep the stream.
      return {
        $case: 'errorResponse',
        value: { errorCode: grpc.status.INVALID_ARGUMENT, errorMessage: 'no known message_request set' },
      };
  }
}

function notFound(errorMessage: string): ReflectionAnswer {
  return { $case: 'errorResponse', value: { errorCode: grpc.status.NOT_FOUND, errorMessage } };
}

/**
 * The requested file first (always, even if sent before: it is the answer), then its transitive
 * imports that this stream has not sent yet, breadth first.
 */
function fileDescriptorAnswer(fileName: string, index: DescriptorIndex, sentFileNames: Set<string>): ReflectionAnswer {
  const fileDescriptorProto: Buffer[] = [];
  const visitedFileNames = new Set<string>([fileName]);
  const queue = [fileName];
  for (let position = 0; position < queue.length; position++) {
    const currentName = queue[position];
    const file = requireFile(index, currentName);
    if (position === 0 || !sentFileNames.has(currentName)) {
      fileDescriptorProto.push(Buffer.from(file.serialized));
      sentFileNames.add(currentName);
    }
    for (const dependencyName of file.descriptor.dependency) {
      if (!visitedFileNames.has(dependencyName)) {
        visitedFileNames.add(dependencyName);
        queue.push(dependencyName);
      }
    }
  }
  return { $case: 'fileDescriptorResponse', value: { fileDescriptorProto } };
}

function requireFile(index: DescriptorIndex, fileName: string): IndexedFile {
  const file = index.filesByName.get(fileName);
  // indexDescriptorSet checked that every import is present, so a miss here is a defect.
  if (file === undefined) throw new Error(`reflection index lacks file ${fileName}`);
  return file;
}

/**
 * The services `server` has handlers for, sorted, as grpcurl users expect from `list`.
 *
 * grpc-js has no public way to enumerate registered services; its private `handlers` map, keyed
 * by method path (`/package.Service/Method`), has existed since 1.0. Should a later version drop
 * it, we fall back to every service the descriptor set defines (the reflection tests notice).
 */
function listServedServiceNames(server: grpc.Server, index: DescriptorIndex): string[] {
  const handlers: unknown = (server as unknown as { handlers?: unknown }).handlers;
  if (!(handlers instanceof Map)) return [...index.serviceNames].sort();
  const serviceNames = new Set<string>();
  for (const path of handlers.keys()) {
    const match = typeof path === 'string' ? /^\/([^/]+)\/[^/]+$/.exec(path) : null;
    if (match) serviceNames.add(match[1]);
  }
  return [...serviceNames].sort();
}

/** Builds the lookup tables, checking the set is consistent so that errors show at startup. */
function indexDescriptorSet(descriptorSet: FileDescriptorSet): DescriptorIndex {
  const filesByName = new Map<string, IndexedFile>();
  const fileNameBySymbol = new Map<string, string>();
  const messageNames = new Set<string>();
  const extensionFileNamesByType = new Map<string, Map<number, string>>();
  const serviceNames: string[] = [];

  for (const descriptor of descriptorSet.file) {
    if (filesByName.has(descriptor.name)) throw new Error(`descriptor set has file ${descriptor.name} twice`);
    filesByName.set(descriptor.name, { descriptor, serialized: toBinary(FileDescriptorProtoSchema, descriptor) });
  }

  for (const { descriptor: file } of filesByName.values()) {
    for (const dependencyName of file.dependency) {
      if (!filesByName.has(dependencyName)) {
        throw new Error(`descriptor set lacks ${dependencyName}, imported by ${file.name}: build it with its imports`);
      }
    }

    const addSymbol = (symbol: string): void => {
      const existingFileName = fileNameBySymbol.get(symbol);
      if (existingFileName !== undefined) {
        throw new Error(`symbol ${symbol} is declared in both ${existingFileName} and ${file.name}`);
      }
      fileNameBySymbol.set(symbol, file.name);
    };
    const addExtensions = (scope: string, extensions: readonly FieldDescriptorProto[]): void => {
      for (const extension of extensions) {
        addSymbol(scope + extension.name);
        // Descriptors name the extended type fully qualified with a leading dot; requests do not.
        const extendedTypeName = extension.extendee.replace(/^\./, '');
        let fileNamesByNumber = extensionFileNamesByType.get(extendedTypeName);
        if (fileNamesByNumber === undefined) {
          fileNamesByNumber = new Map();
          extensionFileNamesByType.set(extendedTypeName, fileNamesByNumber);
        }
        fileNamesByNumber.set(extension.number, file.name);
      }
    };
    // Enum values are scoped like C++ enumerators: siblings of their enum, not children of it.
    const addEnum = (scope: string, enumType: EnumDescriptorProto): void => {
      addSymbol(scope + enumType.name);
      for (const value of enumType.value) addSymbol(scope + value.name);
    };
    const addMessage = (scope: string, message: DescriptorProto): void => {
      const messageName = scope + message.name;
      addSymbol(messageName);
      messageNames.add(messageName);
      for (const field of message.field) addSymbol(`${messageName}.${field.name}`);
      for (const oneof of message.oneofDecl) addSymbol(`${messageName}.${oneof.name}`);
      for (const nestedMessage of message.nestedType) addMessage(`${messageName}.`, nestedMessage);
      for (const nestedEnum of message.enumType) addEnum(`${messageName}.`, nestedEnum);
      addExtensions(`${messageName}.`, message.extension);
    };

    const packageScope = file.package === '' ? '' : `${file.package}.`;
    for (const message of file.messageType) addMessage(packageScope, message);
    for (const enumType of file.enumType) addEnum(packageScope, enumType);
    for (const service of file.service) {
      const serviceName = packageScope + service.name;
      addSymbol(serviceName);
      serviceNames.push(serviceName);
      for (const method of service.method) addSymbol(`${serviceName}.${method.name}`);
    }
    addExtensions(packageScope, file.extension);
  }

  return { filesByName, fileNameBySymbol, messageNames, extensionFileNamesByType, serviceNames };
}
