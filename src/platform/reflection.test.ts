import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
  type FileDescriptorSet,
} from '@bufbuild/protobuf/wkt';
import { HealthService } from '../gen/grpc/health/v1/health';
import {
  ServerReflectionClient as ServerReflectionV1Client,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from '../gen/grpc/reflection/v1/reflection';
import { ServerReflectionClient as ServerReflectionV1AlphaClient } from '../gen/grpc/reflection/v1alpha/reflection';
import { addReflectionService } from './reflection';
import { createHealthService } from './health';

const descriptorSetBytes = readFileSync(path.join(__dirname, '../gen/descriptors.binpb'));
const descriptorSet = fromBinary(FileDescriptorSetSchema, descriptorSetBytes);

/** A reflection stream on which each request is answered, in order, by one response. */
interface ReflectionStream {
  ask(messageRequest: ServerReflectionRequest['messageRequest'], host?: string): Promise<ServerReflectionResponse>;
  close(): void;
}

type ReflectionClient =
  InstanceType<typeof ServerReflectionV1Client> | InstanceType<typeof ServerReflectionV1AlphaClient>;

function openReflectionStream(client: ReflectionClient): ReflectionStream {
  const call = client.serverReflectionInfo();
  const waiting: Array<{ resolve: (response: ServerReflectionResponse) => void; reject: (error: Error) => void }> = [];
  call.on('data', (response: ServerReflectionResponse) => waiting.shift()?.resolve(response));
  call.on('error', (error: Error) => waiting.splice(0).forEach((waiter) => waiter.reject(error)));
  return {
    ask: (messageRequest, host = '') =>
      new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        call.write({ host, messageRequest });
      }),
    close: () => call.end(),
  };
}

function fileDescriptors(response: ServerReflectionResponse): FileDescriptorProto[] {
  if (response.messageResponse?.$case !== 'fileDescriptorResponse') {
    throw new Error(`expected file descriptors, got ${JSON.stringify(response.messageResponse)}`);
  }
  return response.messageResponse.value.fileDescriptorProto.map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes),
  );
}

function fileNames(response: ServerReflectionResponse): string[] {
  return fileDescriptors(response).map((file) => file.name);
}

function errorOf(response: ServerReflectionResponse): { errorCode: number; errorMessage: string } {
  if (response.messageResponse?.$case !== 'errorResponse') {
    throw new Error(`expected an error, got ${JSON.stringify(response.messageResponse)}`);
  }
  return response.messageResponse.value;
}

/** A file that extends a message, so extension lookups have something to find. */
function extensionDescriptorSet(): FileDescriptorSet {
  const optionalLabel = FieldDescriptorProto_Label.OPTIONAL;
  const stringType = FieldDescriptorProto_Type.STRING;
  const extendable = create(FileDescriptorProtoSchema, {
    name: 'example/extendable.proto',
    package: 'example',
    syntax: 'proto2',
    messageType: [{ name: 'Extendable', extensionRange: [{ start: 100, end: 200 }] }],
  });
  const extending = create(FileDescriptorProtoSchema, {
    name: 'example/extending.proto',
    package: 'example.more',
    syntax: 'proto2',
    dependency: ['example/extendable.proto'],
    extension: [{ name: 'note', number: 101, label: optionalLabel, type: stringType, extendee: '.example.Extendable' }],
    messageType: [
      {
        name: 'Holder',
        extension: [
          { name: 'label', number: 150, label: optionalLabel, type: stringType, extendee: '.example.Extendable' },
        ],
      },
    ],
  });
  return create(FileDescriptorSetSchema, { file: [extendable, extending] });
}

async function startServer(
  configure: (server: grpc.Server) => void,
): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  configure(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
  return { server, address: `127.0.0.1:${port}` };
}

describe('addReflectionService', () => {
  let server: grpc.Server;
  let v1Client: InstanceType<typeof ServerReflectionV1Client>;
  let v1AlphaClient: InstanceType<typeof ServerReflectionV1AlphaClient>;
  let stream: ReflectionStream;

  beforeAll(async () => {
    const started = await startServer((newServer) => {
      newServer.addService(HealthService, createHealthService().implementation);
      // Given as bytes here; the extension tests below give a parsed set.
      addReflectionService(newServer, descriptorSetBytes);
    });
    server = started.server;
    v1Client = new ServerReflectionV1Client(started.address, grpc.credentials.createInsecure());
    v1AlphaClient = new ServerReflectionV1AlphaClient(started.address, grpc.credentials.createInsecure());
  });

  beforeEach(() => {
    stream = openReflectionStream(v1Client);
  });

  afterEach(() => stream.close());

  afterAll(() => {
    v1Client.close();
    v1AlphaClient.close();
    server.forceShutdown();
  });

  test('lists the services the server serves, not every service the descriptor set defines', async () => {
    const response = await stream.ask({ $case: 'listServices', value: '' });

    expect(response.messageResponse).toEqual({
      $case: 'listServicesResponse',
      value: {
        service: [
          { name: 'grpc.health.v1.Health' },
          { name: 'grpc.reflection.v1.ServerReflection' },
          { name: 'grpc.reflection.v1alpha.ServerReflection' },
        ],
      },
    });
  });

  test('echoes the host and the original request', async () => {
    const response = await stream.ask({ $case: 'fileContainingSymbol', value: 'no.such.Symbol' }, 'ledger.example:443');

    expect(response.validHost).toBe('ledger.example:443');
    expect(response.originalRequest).toEqual({
      host: 'ledger.example:443',
      messageRequest: { $case: 'fileContainingSymbol', value: 'no.such.Symbol' },
    });
  });

  test('sends a file with its imports, each complete, correctly named and with its dependency list', async () => {
    const files = fileDescriptors(
      await stream.ask({ $case: 'fileContainingSymbol', value: 'interclear.ledger.v1.Transfer' }),
    );

    expect(files.map((file) => file.name)).toEqual([
      'interclear/ledger/v1/ledger.proto',
      'google/protobuf/duration.proto',
      'google/protobuf/timestamp.proto',
      'google/rpc/status.proto',
      'google/protobuf/any.proto',
    ]);
    expect(files[0].dependency).toEqual([
      'google/protobuf/duration.proto',
      'google/protobuf/timestamp.proto',
      'google/rpc/status.proto',
    ]);
    for (const file of files) {
      const original = descriptorSet.file.find((candidate) => candidate.name === file.name);
      expect(original).toBeDefined();
      expect(equals(FileDescriptorProtoSchema, file, original!)).toBe(true);
    }
  });

  test('does not resend imports already sent on the stream, but always sends the file asked for', async () => {
    await stream.ask({ $case: 'fileContainingSymbol', value: 'interclear.ledger.v1.Transfer' });

    // error_details.proto imports duration.proto, which the first answer carried.
    expect(fileNames(await stream.ask({ $case: 'fileContainingSymbol', value: 'google.rpc.ErrorInfo' }))).toEqual([
      'google/rpc/error_details.proto',
    ]);
    expect(fileNames(await stream.ask({ $case: 'fileByFilename', value: 'google/protobuf/timestamp.proto' }))).toEqual([
      'google/protobuf/timestamp.proto',
    ]);
  });

  test('sends every import again on a new stream', async () => {
    await stream.ask({ $case: 'fileContainingSymbol', value: 'interclear.ledger.v1.Transfer' });
    const secondStream = openReflectionStream(v1Client);
    try {
      expect(
        fileNames(await secondStream.ask({ $case: 'fileContainingSymbol', value: 'google.rpc.ErrorInfo' })),
      ).toEqual(['google/rpc/error_details.proto', 'google/protobuf/duration.proto']);
    } finally {
      secondStream.close();
    }
  });

  test.each([
    ['a service', 'grpc.health.v1.Health', 'grpc/health/v1/health.proto'],
    ['a method', 'grpc.health.v1.Health.Watch', 'grpc/health/v1/health.proto'],
    ['a message', 'grpc.health.v1.HealthCheckRequest', 'grpc/health/v1/health.proto'],
    ['a nested message', 'grpc.health.v1.HealthListResponse.StatusesEntry', 'grpc/health/v1/health.proto'],
    ['a nested enum', 'grpc.health.v1.HealthCheckResponse.ServingStatus', 'grpc/health/v1/health.proto'],
    [
      'a nested enum value, scoped beside its enum',
      'grpc.health.v1.HealthCheckResponse.NOT_SERVING',
      'grpc/health/v1/health.proto',
    ],
    ['a field', 'grpc.health.v1.HealthCheckRequest.service', 'grpc/health/v1/health.proto'],
    ['a top-level enum', 'interclear.ledger.v1.TransferState', 'interclear/ledger/v1/ledger.proto'],
    ['a top-level enum value', 'interclear.ledger.v1.TRANSFER_STATE_PREPARED', 'interclear/ledger/v1/ledger.proto'],
    ['a field of an imported type', 'interclear.ledger.v1.Transfer.expiry_time', 'interclear/ledger/v1/ledger.proto'],
    ['a oneof', 'grpc.reflection.v1.ServerReflectionRequest.message_request', 'grpc/reflection/v1/reflection.proto'],
    ['a well-known type', 'google.protobuf.Timestamp', 'google/protobuf/timestamp.proto'],
    [
      'the reflection service itself',
      'grpc.reflection.v1alpha.ServerReflection',
      'grpc/reflection/v1alpha/reflection.proto',
    ],
  ])('finds the file containing %s', async (_kind, symbol, expectedFileName) => {
    const names = fileNames(await stream.ask({ $case: 'fileContainingSymbol', value: symbol }));

    expect(names[0]).toBe(expectedFileName);
  });

  test.each([
    ['an unknown symbol', 'interclear.ledger.v1.NoSuchMessage'],
    ['an enum value named inside its enum', 'interclear.ledger.v1.TransferState.TRANSFER_STATE_PREPARED'],
    ['a symbol with a leading dot', '.google.protobuf.Timestamp'],
    ['a package', 'interclear.ledger.v1'],
  ])('answers NOT_FOUND for %s and keeps the stream usable', async (_kind, symbol) => {
    const error = errorOf(await stream.ask({ $case: 'fileContainingSymbol', value: symbol }));

    expect(error.errorCode).toBe(grpc.status.NOT_FOUND);
    expect(error.errorMessage).toContain(symbol);
    expect(fileNames(await stream.ask({ $case: 'fileByFilename', value: 'grpc/health/v1/health.proto' }))).toEqual([
      'grpc/health/v1/health.proto',
    ]);
  });

  test('answers NOT_FOUND for an unknown file name', async () => {
    const error = errorOf(await stream.ask({ $case: 'fileByFilename', value: 'interclear/ledger/v1/missing.proto' }));

    expect(error.errorCode).toBe(grpc.status.NOT_FOUND);
  });

  test('answers NOT_FOUND for an extension that does not exist', async () => {
    const response = await stream.ask({
      $case: 'fileContainingExtension',
      value: { containingType: 'interclear.ledger.v1.Transfer', extensionNumber: 100 },
    });

    expect(errorOf(response).errorCode).toBe(grpc.status.NOT_FOUND);
  });

  test('lists no extension numbers for a message nothing extends, and NOT_FOUND for an unknown type', async () => {
    const known = await stream.ask({ $case: 'allExtensionNumbersOfType', value: 'interclear.ledger.v1.Transfer' });
    const unknown = await stream.ask({ $case: 'allExtensionNumbersOfType', value: 'interclear.ledger.v1.Nothing' });

    expect(known.messageResponse).toEqual({
      $case: 'allExtensionNumbersResponse',
      value: { baseTypeName: 'interclear.ledger.v1.Transfer', extensionNumber: [] },
    });
    expect(errorOf(unknown).errorCode).toBe(grpc.status.NOT_FOUND);
  });

  test('answers INVALID_ARGUMENT to a request that asks nothing', async () => {
    const error = errorOf(await stream.ask(undefined));

    expect(error.errorCode).toBe(grpc.status.INVALID_ARGUMENT);
  });

  test('serves v1alpha with the same answers', async () => {
    const alphaStream = openReflectionStream(v1AlphaClient);
    try {
      const listed = await alphaStream.ask({ $case: 'listServices', value: '' });
      const files = await alphaStream.ask({ $case: 'fileContainingSymbol', value: 'interclear.ledger.v1.Transfer' });

      expect(
        listed.messageResponse?.$case === 'listServicesResponse' && listed.messageResponse.value.service,
      ).toContainEqual({
        name: 'grpc.reflection.v1alpha.ServerReflection',
      });
      expect(fileNames(files)).toEqual([
        'interclear/ledger/v1/ledger.proto',
        'google/protobuf/duration.proto',
        'google/protobuf/timestamp.proto',
        'google/rpc/status.proto',
        'google/protobuf/any.proto',
      ]);
    } finally {
      alphaStream.close();
    }
  });

  test('answers many pipelined requests in order', async () => {
    const symbols = Array.from({ length: 200 }, (_, position) =>
      position % 2 === 0 ? 'grpc.health.v1.HealthCheckRequest' : 'google.protobuf.Timestamp',
    );

    const responses = await Promise.all(
      symbols.map((symbol) => stream.ask({ $case: 'fileContainingSymbol', value: symbol })),
    );

    expect(responses.map((response) => fileNames(response)[0])).toEqual(
      symbols.map((symbol) =>
        symbol.startsWith('grpc') ? 'grpc/health/v1/health.proto' : 'google/protobuf/timestamp.proto',
      ),
    );
  });
});

describe('addReflectionService with extensions', () => {
  let server: grpc.Server;
  let client: InstanceType<typeof ServerReflectionV1Client>;
  let stream: ReflectionStream;

  beforeAll(async () => {
    const started = await startServer((newServer) => addReflectionService(newServer, extensionDescriptorSet()));
    server = started.server;
    client = new ServerReflectionV1Client(started.address, grpc.credentials.createInsecure());
  });

  beforeEach(() => {
    stream = openReflectionStream(client);
  });

  afterEach(() => stream.close());

  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  test.each([
    ['a file-level extension', 101],
    ['an extension declared inside a message', 150],
  ])('finds the file declaring %s, with the file it extends', async (_kind, extensionNumber) => {
    const response = await stream.ask({
      $case: 'fileContainingExtension',
      value: { containingType: 'example.Extendable', extensionNumber },
    });

    expect(fileNames(response)).toEqual(['example/extending.proto', 'example/extendable.proto']);
  });

  test('lists every extension number of a type', async () => {
    const response = await stream.ask({ $case: 'allExtensionNumbersOfType', value: 'example.Extendable' });

    expect(response.messageResponse).toEqual({
      $case: 'allExtensionNumbersResponse',
      value: { baseTypeName: 'example.Extendable', extensionNumber: [101, 150] },
    });
  });

  test.each([
    ['a file-level extension', 'example.more.note'],
    ['an extension declared inside a message', 'example.more.Holder.label'],
  ])('finds %s by name', async (_kind, symbol) => {
    expect(fileNames(await stream.ask({ $case: 'fileContainingSymbol', value: symbol }))[0]).toBe(
      'example/extending.proto',
    );
  });
});

/** A server that hands each reflection call to the test too, so it can watch the server side. */
class ObservedServer extends grpc.Server {
  readonly reflectionCalls: Array<grpc.ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>> = [];
  private readonly callListeners: Array<() => void> = [];

  override addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    const handler = implementation.serverReflectionInfo as
      grpc.handleBidiStreamingCall<ServerReflectionRequest, ServerReflectionResponse> | undefined;
    if (handler === undefined) {
      super.addService(service, implementation);
      return;
    }
    const observedHandler: grpc.handleBidiStreamingCall<ServerReflectionRequest, ServerReflectionResponse> = (call) => {
      this.reflectionCalls.push(call);
      this.callListeners.splice(0).forEach((listener) => listener());
      handler(call);
    };
    super.addService(service, { ...implementation, serverReflectionInfo: observedHandler });
  }

  async firstReflectionCall(): Promise<grpc.ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>> {
    while (this.reflectionCalls.length === 0) await new Promise<void>((resolve) => this.callListeners.push(resolve));
    return this.reflectionCalls[0];
  }
}

describe('addReflectionService with a client that does not read', () => {
  test('stops reading requests until the client reads the responses, then answers every one in order', async () => {
    const server = new ObservedServer();
    addReflectionService(server, descriptorSetBytes);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      ),
    );
    const client = new ServerReflectionV1Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const call = client.serverReflectionInfo();
      call.pause();
      // Each answer is the whole ledger.proto, so a few fill HTTP/2 flow control's window.
      const requestCount = 300;
      for (let position = 0; position < requestCount; position++) {
        call.write({
          host: '',
          messageRequest: { $case: 'fileByFilename', value: 'interclear/ledger/v1/ledger.proto' },
        });
      }
      call.end();

      await once(await server.firstReflectionCall(), 'pause');
      const responses: ServerReflectionResponse[] = [];
      call.on('data', (response: ServerReflectionResponse) => responses.push(response));
      const status = once(call, 'status');
      call.resume();
      await status;

      expect(responses).toHaveLength(requestCount);
      expect(responses.every((response) => fileNames(response)[0] === 'interclear/ledger/v1/ledger.proto')).toBe(true);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});

describe('addReflectionService before the other services', () => {
  test('lists services added after it, because it looks them up when asked', async () => {
    const { server, address } = await startServer((newServer) => {
      addReflectionService(newServer, descriptorSet);
      newServer.addService(HealthService, createHealthService().implementation);
    });
    const client = new ServerReflectionV1Client(address, grpc.credentials.createInsecure());
    const stream = openReflectionStream(client);
    try {
      const response = await stream.ask({ $case: 'listServices', value: '' });

      expect(
        response.messageResponse?.$case === 'listServicesResponse' && response.messageResponse.value.service,
      ).toContainEqual({
        name: 'grpc.health.v1.Health',
      });
    } finally {
      stream.close();
      client.close();
      server.forceShutdown();
    }
  });
});

describe('addReflectionService with an inconsistent descriptor set', () => {
  function setOf(...fileNames: string[]): FileDescriptorSet {
    return create(FileDescriptorSetSchema, {
      file: descriptorSet.file.filter((file) => fileNames.includes(file.name)),
    });
  }

  test('refuses a set that lacks an imported file, the defect that breaks grpcurl', () => {
    const withoutTimestamp = setOf('interclear/ledger/v1/ledger.proto', 'google/protobuf/duration.proto');

    expect(() => addReflectionService(new grpc.Server(), withoutTimestamp)).toThrow(
      /lacks google\/protobuf\/timestamp\.proto, imported by interclear\/ledger\/v1\/ledger\.proto/,
    );
  });

  test('refuses a set with the same file twice', () => {
    const repeated = create(FileDescriptorSetSchema, { file: [...descriptorSet.file, descriptorSet.file[0]] });

    expect(() => addReflectionService(new grpc.Server(), toBinary(FileDescriptorSetSchema, repeated))).toThrow(/twice/);
  });

  test('refuses a set declaring one symbol in two files', () => {
    const health = descriptorSet.file.find((file) => file.name === 'grpc/health/v1/health.proto')!;
    const copy = create(FileDescriptorProtoSchema, { ...health, name: 'copy/health.proto' });

    expect(() =>
      addReflectionService(new grpc.Server(), create(FileDescriptorSetSchema, { file: [...descriptorSet.file, copy] })),
    ).toThrow(/grpc\.health\.v1\.HealthCheckRequest is declared in both/);
  });
});
