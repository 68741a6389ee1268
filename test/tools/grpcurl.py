#!/usr/bin/python3
"""A strict stand-in for grpcurl, which cannot be installed here, to test server reflection.

It knows nothing of the server's protos: like grpcurl it learns every type through server
reflection (v1alpha first, then v1), puts the files it receives into an empty descriptor pool
and fails loudly when a file's imports cannot be had, which is how grpcurl fails on servers
whose reflection leaves out `dependency` lists ("cannot resolve type").

Usage (a subset of grpcurl's):
    grpcurl.py [-plaintext | -cacert FILE [-cert FILE -key FILE] [-servername NAME]]
               [-H 'key: value']... [-d JSON|@] [-emit-defaults] [-max-time SECONDS]
               ADDRESS (list [SERVICE] | describe [SYMBOL] | SERVICE/METHOD)

It needs Debian's python3-grpcio, python3-grpc-tools, python3-protobuf and grpc-proto (for the
reflection protos, compiled when it starts), run with /usr/bin/python3.
"""

import argparse
import json
import os
import queue
import sys
import tempfile

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, json_format, message_factory

REFLECTION_PROTO_ROOT = "/usr/share/grpc-proto"
REFLECTION_VERSIONS = ("v1alpha", "v1")

# grpcurl prints Go's names for status codes.
STATUS_CODE_NAMES = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

# Like grpcurl: a failed RPC exits with 64 plus its status code, any other failure with 1.
STATUS_EXIT_CODE_OFFSET = 64

SCALAR_TYPE_NAMES = {
    descriptor.FieldDescriptor.TYPE_DOUBLE: "double",
    descriptor.FieldDescriptor.TYPE_FLOAT: "float",
    descriptor.FieldDescriptor.TYPE_INT64: "int64",
    descriptor.FieldDescriptor.TYPE_UINT64: "uint64",
    descriptor.FieldDescriptor.TYPE_INT32: "int32",
    descriptor.FieldDescriptor.TYPE_FIXED64: "fixed64",
    descriptor.FieldDescriptor.TYPE_FIXED32: "fixed32",
    descriptor.FieldDescriptor.TYPE_BOOL: "bool",
    descriptor.FieldDescriptor.TYPE_STRING: "string",
    descriptor.FieldDescriptor.TYPE_BYTES: "bytes",
    descriptor.FieldDescriptor.TYPE_UINT32: "uint32",
    descriptor.FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    descriptor.FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    descriptor.FieldDescriptor.TYPE_SINT32: "sint32",
    descriptor.FieldDescriptor.TYPE_SINT64: "sint64",
}


class Failure(Exception):
    """A failure that is not an RPC status: printed as 'Failed to ...' and exit code 1."""


def message_class(message_descriptor):
    """The generated class for a descriptor, across protobuf versions."""
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(message_descriptor)
    return message_factory.MessageFactory(message_descriptor.file.pool).GetPrototype(message_descriptor)


def load_reflection_protocol():
    """Compiles Debian's copy of the reflection protos, so the protocol is not taken from the server."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as directory:
        output_path = os.path.join(directory, "reflection.binpb")
        arguments = ["protoc", "-I" + REFLECTION_PROTO_ROOT, "--descriptor_set_out=" + output_path]
        arguments += [
            os.path.join(REFLECTION_PROTO_ROOT, "grpc/reflection", version, "reflection.proto") for version in REFLECTION_VERSIONS
        ]
        if protoc.main(arguments) != 0:
            raise Failure("compile the reflection protos from " + REFLECTION_PROTO_ROOT + " (install grpc-proto)")
        with open(output_path, "rb") as output:
            descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(output.read())
    pool = descriptor_pool.DescriptorPool()
    for file_proto in descriptor_set.file:
        pool.Add(file_proto)
    return {
        version: (
            message_class(pool.FindMessageTypeByName("grpc.reflection.%s.ServerReflectionRequest" % version)),
            message_class(pool.FindMessageTypeByName("grpc.reflection.%s.ServerReflectionResponse" % version)),
        )
        for version in REFLECTION_VERSIONS
    }


class ReflectionStream:
    """One ServerReflectionInfo stream, asked one request at a time, as grpcurl's client does."""

    def __init__(self, channel, version, request_class, response_class, metadata, timeout_seconds):
        self.version = version
        self.request_class = request_class
        self._requests = queue.Queue()
        call = channel.stream_stream(
            "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        self._responses = call(self._request_iterator(), metadata=metadata, timeout=timeout_seconds)

    def _request_iterator(self):
        while True:
            request = self._requests.get()
            if request is None:
                return
            yield request

    def ask(self, **request_fields):
        self._requests.put(self.request_class(**request_fields))
        return next(self._responses)

    def close(self):
        self._requests.put(None)
        self._responses.cancel()


class ServerDescriptors:
    """The server's protos as learnt through reflection, in a pool that starts empty."""

    def __init__(self, channel, metadata, timeout_seconds, reflection_version):
        self.pool = descriptor_pool.DescriptorPool()
        self._file_protos = {}
        self._files_in_pool = set()
        self._stream = self._open_stream(channel, metadata, timeout_seconds, reflection_version)

    def _open_stream(self, channel, metadata, timeout_seconds, reflection_version):
        protocol = load_reflection_protocol()
        versions = REFLECTION_VERSIONS if reflection_version == "auto" else (reflection_version,)
        for version in versions:
            request_class, response_class = protocol[version]
            stream = ReflectionStream(channel, version, request_class, response_class, metadata, timeout_seconds)
            try:
                # list_services is cheap and tells whether this version is served at all.
                stream.ask(list_services="")
                return stream
            except grpc.RpcError as error:
                stream.close()
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
        raise Failure("list services: server does not support the reflection API (tried %s)" % ", ".join(versions))

    def close(self):
        self._stream.close()

    def list_services(self):
        response = self._stream.ask(list_services="")
        self._raise_if_error(response, "list services")
        return sorted(service.name for service in response.list_services_response.service)

    def resolve_symbol(self, symbol):
        """Loads the file declaring `symbol`, and its imports, into the pool; returns that file."""
        response = self._stream.ask(file_containing_symbol=symbol)
        self._raise_if_error(response, 'resolve symbol "%s"' % symbol)
        file_name = self._receive_files(response)[0]
        self._add_file_to_pool(file_name, [])
        return self.pool.FindFileByName(file_name)

    def _raise_if_error(self, response, action):
        if response.WhichOneof("message_response") == "error_response":
            error = response.error_response
            code = STATUS_CODE_NAMES.get(_status_code(error.error_code), str(error.error_code))
            raise Failure("%s: %s: %s" % (action, code, error.error_message))

    def _receive_files(self, response):
        file_names = []
        for serialized in response.file_descriptor_response.file_descriptor_proto:
            file_proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
            self._file_protos.setdefault(file_proto.name, file_proto)
            file_names.append(file_proto.name)
        if not file_names:
            raise Failure("reflection answered with no file descriptors")
        return file_names

    def _fetch_file(self, file_name, imported_by):
        """Asks for a file the server has not sent yet, as grpcurl does for missing imports."""
        response = self._stream.ask(file_by_filename=file_name)
        if response.WhichOneof("message_response") == "error_response":
            raise Failure(
                'resolve file "%s", imported by "%s": cannot resolve type: %s'
                % (file_name, imported_by, response.error_response.error_message)
            )
        self._receive_files(response)
        if file_name not in self._file_protos:
            raise Failure('resolve file "%s": the server sent other files instead' % file_name)

    def _add_file_to_pool(self, file_name, importing_chain):
        if file_name in self._files_in_pool:
            return
        if file_name in importing_chain:
            raise Failure("load %s: import cycle %s" % (file_name, " -> ".join(importing_chain + [file_name])))
        file_proto = self._file_protos[file_name]
        for dependency_name in file_proto.dependency:
            if dependency_name not in self._file_protos:
                self._fetch_file(dependency_name, file_name)
            self._add_file_to_pool(dependency_name, importing_chain + [file_name])
        try:
            self.pool.Add(file_proto)
            # Building the file checks that every type it names is defined by it or its imports.
            self.pool.FindFileByName(file_name)
        except (TypeError, KeyError) as error:
            raise Failure('load "%s": cannot resolve type: %s' % (file_name, error))
        self._files_in_pool.add(file_name)

    def find_method(self, method_name):
        """`package.Service/Method` or `package.Service.Method`, grpcurl's two spellings."""
        if "/" in method_name:
            service_name, _, short_name = method_name.rpartition("/")
        else:
            service_name, _, short_name = method_name.rpartition(".")
        if not service_name or not short_name:
            raise Failure('invoke "%s": give the method as SERVICE/METHOD' % method_name)
        self.resolve_symbol(service_name)
        try:
            service = self.pool.FindServiceByName(service_name)
        except KeyError:
            raise Failure('invoke "%s": "%s" is not a service' % (method_name, service_name))
        method = service.methods_by_name.get(short_name)
        if method is None:
            raise Failure('invoke: service "%s" does not include a method named "%s"' % (service_name, short_name))
        return method

    def find_descriptor(self, symbol):
        """The descriptor of any named element, and grpcurl's word for what it is."""
        file = self.resolve_symbol(symbol)
        lookups = [
            ("a service", self.pool.FindServiceByName),
            ("a message", self.pool.FindMessageTypeByName),
            ("an enum", self.pool.FindEnumTypeByName),
            ("a method", self.pool.FindMethodByName),
            ("a field", self.pool.FindFieldByName),
            ("an extension", self.pool.FindExtensionByName),
            ("a oneof", self.pool.FindOneofByName),
        ]
        for kind, lookup in lookups:
            try:
                return kind, lookup(symbol)
            except KeyError:
                pass
        # Enum values are named beside their enum: in its message, or in its file's package.
        scope, _, value_name = symbol.rpartition(".")
        try:
            enums = list(self.pool.FindMessageTypeByName(scope).enum_types)
        except KeyError:
            enums = list(file.enum_types_by_name.values()) if file.package == scope else []
        for enum in enums:
            if value_name in enum.values_by_name:
                return "an enum value", enum.values_by_name[value_name]
        raise Failure('resolve symbol "%s": the file the server sent, %s, does not declare it' % (symbol, file.name))


def _status_code(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return None


def type_name(field):
    if field.type in (descriptor.FieldDescriptor.TYPE_MESSAGE, descriptor.FieldDescriptor.TYPE_GROUP):
        return "." + field.message_type.full_name
    if field.type == descriptor.FieldDescriptor.TYPE_ENUM:
        return "." + field.enum_type.full_name
    return SCALAR_TYPE_NAMES[field.type]


def is_map_field(field):
    return (
        field.label == descriptor.FieldDescriptor.LABEL_REPEATED
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def has_synthetic_oneof(field):
    oneof = field.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == "_" + field.name


def describe_field(field):
    if is_map_field(field):
        entry = field.message_type
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return "map<%s, %s> %s = %d;" % (type_name(key), type_name(value), field.name, field.number)
    label = ""
    if field.label == descriptor.FieldDescriptor.LABEL_REPEATED:
        label = "repeated "
    elif field.file.syntax == "proto2":
        label = "required " if field.label == descriptor.FieldDescriptor.LABEL_REQUIRED else "optional "
    elif has_synthetic_oneof(field):
        label = "optional "
    return "%s%s %s = %d;" % (label, type_name(field), field.name, field.number)


def describe_method(method):
    request_stream = "stream " if _method_flag(method, "client_streaming") else ""
    response_stream = "stream " if _method_flag(method, "server_streaming") else ""
    return "rpc %s ( %s.%s ) returns ( %s.%s );" % (
        method.name,
        request_stream,
        method.input_type.full_name,
        response_stream,
        method.output_type.full_name,
    )


def _method_flag(method, name):
    """Streaming flags; older protobuf releases only have them in the method's proto form."""
    if hasattr(method, name):
        return getattr(method, name)
    method_proto = descriptor_pb2.MethodDescriptorProto()
    method.CopyToProto(method_proto)
    return getattr(method_proto, name)


def describe_enum(enum, indent=""):
    lines = [indent + "enum %s {" % enum.name]
    lines += [indent + "  %s = %d;" % (value.name, value.number) for value in enum.values]
    lines.append(indent + "}")
    return lines


def describe_message(message, indent=""):
    lines = [indent + "message %s {" % message.name]
    inner = indent + "  "
    printed_oneofs = set()
    for field in message.fields:
        oneof = field.containing_oneof
        if oneof is not None and not has_synthetic_oneof(field):
            if oneof.name not in printed_oneofs:
                printed_oneofs.add(oneof.name)
                lines.append(inner + "oneof %s {" % oneof.name)
                lines += [inner + "  " + describe_field(member) for member in oneof.fields]
                lines.append(inner + "}")
            continue
        lines.append(inner + describe_field(field))
    for nested in message.nested_types:
        if not nested.GetOptions().map_entry:
            lines += describe_message(nested, inner)
    for enum in message.enum_types:
        lines += describe_enum(enum, inner)
    lines.append(indent + "}")
    return lines


def describe_service(service):
    lines = ["service %s {" % service.name]
    lines += ["  " + describe_method(method) for method in service.methods]
    lines.append("}")
    return lines


def describe(kind, element):
    if kind == "a service":
        lines = describe_service(element)
    elif kind == "a message":
        lines = describe_message(element)
    elif kind == "an enum":
        lines = describe_enum(element)
    elif kind == "a method":
        lines = [describe_method(element)]
    elif kind in ("a field", "an extension"):
        lines = [describe_field(element)]
    elif kind == "a oneof":
        lines = ["oneof %s {" % element.name] + ["  " + describe_field(field) for field in element.fields] + ["}"]
    else:
        lines = ["%s = %d;" % (element.name, element.number)]
    return "%s is %s:\n%s" % (full_name_of(element), kind, "\n".join(lines))


def full_name_of(element):
    """Enum values have no full name in older protobuf releases; theirs is their enum's scope plus their name."""
    if hasattr(element, "full_name"):
        return element.full_name
    enum = element.type
    scope = enum.containing_type.full_name if enum.containing_type is not None else enum.file.package
    return (scope + "." if scope else "") + element.name


def parse_json_messages(data):
    """grpcurl's -d: zero or more JSON objects, one after another."""
    decoder = json.JSONDecoder()
    messages, position = [], 0
    while True:
        while position < len(data) and data[position].isspace():
            position += 1
        if position == len(data):
            return messages
        try:
            value, position = decoder.raw_decode(data, position)
        except json.JSONDecodeError as error:
            raise Failure("parse the request data: %s" % error)
        messages.append(value)


def resolve_any_types(message, descriptors):
    """Loads the type of every google.protobuf.Any inside `message` through reflection, as
    grpcurl's Any resolver does, so that they print as JSON objects with "@type"."""
    if message.DESCRIPTOR.full_name == "google.protobuf.Any":
        if message.type_url:
            descriptors.resolve_symbol(message.TypeName())
        return
    for field, value in message.ListFields():
        if field.message_type is None or is_map_field(field):
            continue
        for item in value if field.label == field.LABEL_REPEATED else [value]:
            resolve_any_types(item, descriptors)


def message_to_json(message, pool, emit_defaults):
    options = {"indent": 2, "preserving_proto_field_name": False, "descriptor_pool": pool}
    if not emit_defaults:
        return json_format.MessageToJson(message, **options)
    try:
        return json_format.MessageToJson(message, always_print_fields_with_no_presence=True, **options)
    except TypeError:
        return json_format.MessageToJson(message, including_default_value_fields=True, **options)


def invoke(channel, descriptors, method_name, data, metadata, timeout_seconds, emit_defaults):
    method = descriptors.find_method(method_name)
    request_class = message_class(method.input_type)
    response_class = message_class(method.output_type)
    requests = []
    for value in parse_json_messages(data):
        request = request_class()
        try:
            json_format.ParseDict(value, request, descriptor_pool=descriptors.pool)
        except json_format.ParseError as error:
            raise Failure("create request: %s" % error)
        requests.append(request)
    client_streaming = _method_flag(method, "client_streaming")
    server_streaming = _method_flag(method, "server_streaming")
    if not client_streaming and len(requests) > 1:
        raise Failure("invoke: %s takes one request, %d were given" % (method.full_name, len(requests)))

    path = "/%s/%s" % (method.containing_service.full_name, method.name)
    serializers = {"request_serializer": request_class.SerializeToString, "response_deserializer": response_class.FromString}
    call_options = {"metadata": metadata, "timeout": timeout_seconds}
    if client_streaming and server_streaming:
        responses = channel.stream_stream(path, **serializers)(iter(requests), **call_options)
    elif client_streaming:
        responses = [channel.stream_unary(path, **serializers)(iter(requests), **call_options)]
    elif server_streaming:
        responses = channel.unary_stream(path, **serializers)(requests[0] if requests else request_class(), **call_options)
    else:
        responses = [channel.unary_unary(path, **serializers)(requests[0] if requests else request_class(), **call_options)]
    for response in responses:
        resolve_any_types(response, descriptors)
        print(message_to_json(response, descriptors.pool, emit_defaults), flush=True)


def print_rpc_error(error, descriptors):
    print("ERROR:", file=sys.stderr)
    print("  Code: %s" % STATUS_CODE_NAMES.get(error.code(), str(error.code())), file=sys.stderr)
    print("  Message: %s" % error.details(), file=sys.stderr)
    details = status_details(error, descriptors)
    if details:
        print("  Details:", file=sys.stderr)
        for position, detail in enumerate(details, start=1):
            print("  %d)\t%s" % (position, detail.replace("\n", "\n    \t")), file=sys.stderr)


def status_details(error, descriptors):
    """The google.rpc.Status details of the trailer, as JSON, resolved through reflection."""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    encoded = next((value for key, value in trailers or () if key == "grpc-status-details-bin"), None)
    if encoded is None or descriptors is None:
        return []
    try:
        descriptors.resolve_symbol("google.rpc.Status")
        status = message_class(descriptors.pool.FindMessageTypeByName("google.rpc.Status")).FromString(encoded)
        for detail in status.details:
            descriptors.resolve_symbol(detail.TypeName())
        return [json_format.MessageToJson(detail, indent=2, descriptor_pool=descriptors.pool) for detail in status.details]
    except (Failure, KeyError, grpc.RpcError) as failure:
        return ["(undecodable details: %s)" % failure]


def open_channel(arguments):
    options = []
    if arguments.servername:
        options.append(("grpc.ssl_target_name_override", arguments.servername))
    if arguments.plaintext:
        return grpc.insecure_channel(arguments.address, options=options)

    def read(path):
        if path is None:
            return None
        with open(path, "rb") as file:
            return file.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(arguments.cacert), private_key=read(arguments.key), certificate_chain=read(arguments.cert)
    )
    return grpc.secure_channel(arguments.address, credentials, options=options)


def parse_headers(headers):
    metadata = []
    for header in headers:
        key, separator, value = header.partition(":")
        if not separator:
            raise Failure('use header "%s": give it as "key: value"' % header)
        metadata.append((key.strip().lower(), value.strip()))
    return metadata


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-plaintext", action="store_true", help="use plain-text HTTP/2 (no TLS)")
    parser.add_argument("-cacert", help="PEM file of the certificate authorities that verify the server")
    parser.add_argument("-cert", help="PEM file of the client certificate, for mutual TLS")
    parser.add_argument("-key", help="PEM file of the client private key, for mutual TLS")
    parser.add_argument("-servername", help="the name to verify the server's certificate against")
    parser.add_argument("-H", dest="headers", action="append", default=[], help="metadata 'key: value', repeatable")
    parser.add_argument("-d", dest="data", help="request body as JSON; '@' reads it from standard input")
    parser.add_argument("-emit-defaults", action="store_true", help="print fields that hold their default value")
    parser.add_argument("-max-time", type=float, help="seconds each RPC may take, reflection included")
    parser.add_argument("-connect-timeout", type=float, default=10.0, help="seconds to wait for the connection")
    parser.add_argument("-reflection-version", choices=["auto", "v1alpha", "v1"], default="auto")
    parser.add_argument("address")
    parser.add_argument("verb", nargs="?", default="list")
    parser.add_argument("symbol", nargs="?")
    arguments = parser.parse_intermixed_args(argv)
    if arguments.plaintext and (arguments.cacert or arguments.cert or arguments.key):
        parser.error("-plaintext cannot be used with -cacert, -cert or -key")
    if bool(arguments.cert) != bool(arguments.key):
        parser.error("-cert and -key go together")
    return arguments


def run(arguments):
    metadata = parse_headers(arguments.headers)
    channel = open_channel(arguments)
    try:
        grpc.channel_ready_future(channel).result(timeout=arguments.connect_timeout)
    except grpc.FutureTimeoutError:
        raise Failure("dial target host \"%s\": not connected within %gs" % (arguments.address, arguments.connect_timeout))
    descriptors = None
    try:
        descriptors = ServerDescriptors(channel, metadata, arguments.max_time, arguments.reflection_version)
        if arguments.verb == "list":
            if arguments.symbol is None:
                print("\n".join(descriptors.list_services()))
            else:
                descriptors.resolve_symbol(arguments.symbol)
                try:
                    service = descriptors.pool.FindServiceByName(arguments.symbol)
                except KeyError:
                    raise Failure('list methods for service "%s": it is not a service' % arguments.symbol)
                print("\n".join(method.full_name for method in service.methods))
        elif arguments.verb == "describe":
            symbols = [arguments.symbol] if arguments.symbol else descriptors.list_services()
            print("\n".join(describe(*descriptors.find_descriptor(symbol)) for symbol in symbols))
        else:
            if arguments.symbol is not None:
                raise Failure("invoke: unexpected argument %s" % arguments.symbol)
            data = sys.stdin.read() if arguments.data == "@" else (arguments.data or "")
            invoke(channel, descriptors, arguments.verb, data, metadata, arguments.max_time, arguments.emit_defaults)
        return 0
    except grpc.RpcError as error:
        print_rpc_error(error, descriptors)
        return STATUS_EXIT_CODE_OFFSET + error.code().value[0]
    finally:
        if descriptors is not None:
            descriptors.close()
        channel.close()


def main(argv):
    arguments = parse_arguments(argv)
    try:
        return run(arguments)
    except Failure as failure:
        print("Failed to %s" % failure, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
