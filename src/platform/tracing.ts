/**
 * OpenTelemetry for every process: W3C trace context carried in gRPC metadata (propagated
 * explicitly by our interceptors, which works everywhere including under jest), a server span
 * per RPC, and OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import type * as grpc from '@grpc/grpc-js';
import * as grpcModule from '@grpc/grpc-js';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const tracerName = 'interclear';

let provider: BasicTracerProvider | undefined;
let globalsInstalled = false;

function installGlobals(): void {
  if (globalsInstalled) return;
  globalsInstalled = true;
  const manager = new AsyncLocalStorageContextManager();
  manager.enable();
  context.setGlobalContextManager(manager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

/** Options of {@link initTracing}. */
export interface TracingOptions {
  /** The service name on every span (resource attribute service.name). */
  serviceName: string;
  /** Export spans here (tests: an in-memory exporter). Default: OTLP when configured, else none. */
  exporter?: SpanExporter;
}

/**
 * Installs the tracer provider once per process. Without an exporter (OTEL_EXPORTER_OTLP_ENDPOINT,
 * INTERCLEAR_TRACE_DIRECTORY or one given here), trace ids are created and propagated but spans
 * are not recorded.
 */
export async function initTracing(options: TracingOptions): Promise<void> {
  installGlobals();
  if (provider) return;
  const processors: SpanProcessor[] = [];
  if (options.exporter) processors.push(new SimpleSpanProcessor(options.exporter));
  const directory = process.env.INTERCLEAR_TRACE_DIRECTORY;
  if (directory) processors.push(new SimpleSpanProcessor(new JsonLinesSpanExporter(directory, options.serviceName)));
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  }
  provider = new BasicTracerProvider({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (e.g. the Helm chart's namespace and pod)
    // add to the resource, and win over the name given here, as OpenTelemetry's SDKs do.
    resource: resourceFromAttributes({ 'service.name': options.serviceName }).merge(
      detectResources({ detectors: [envDetector] }),
    ),
    spanProcessors: processors,
    // With nowhere to export, spans are not recorded: trace ids are still created and passed
    // on (log lines and stored transfers carry them), at a fraction of the cost.
    sampler: processors.length > 0 ? new ParentBasedSampler({ root: new AlwaysOnSampler() }) : new AlwaysOffSampler(),
  });
  trace.setGlobalTracerProvider(provider);
}

/** A span as JsonLinesSpanExporter writes it: one JSON object per line. */
export interface SpanRecord {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  startTimeMs: number;
  endTimeMs: number;
  status: number;
  attributes: Record<string, unknown>;
}

/**
 * Writes finished spans as JSON lines into `<directory>/<service>-<pid>.jsonl`: a collector-free
 * way to look at (and test) a payment's trace across processes on one machine. Enabled by
 * INTERCLEAR_TRACE_DIRECTORY.
 */
export class JsonLinesSpanExporter implements SpanExporter {
  private readonly file: string;

  constructor(directory: string, service: string) {
    mkdirSync(directory, { recursive: true });
    this.file = path.join(directory, `${service.replace(/[^A-Za-z0-9_.-]+/g, '-')}-${process.pid}.jsonl`);
    this.service = service;
  }

  private readonly service: string;

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const toMs = (time: [number, number]) => time[0] * 1000 + time[1] / 1e6;
    const lines = spans.map((span) => {
      const record: SpanRecord = {
        service: this.service,
        traceId: span.spanContext().traceId,
        spanId: span.spanContext().spanId,
        parentSpanId: span.parentSpanContext?.spanId,
        name: span.name,
        kind: span.kind,
        startTimeMs: toMs(span.startTime),
        endTimeMs: toMs(span.endTime),
        status: span.status.code,
        attributes: span.attributes,
      };
      return `${JSON.stringify(record)}\n`;
    });
    try {
      appendFileSync(this.file, lines.join(''));
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      resultCallback({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  async shutdown(): Promise<void> {}
}

/** Set when several services share the process's provider (`interclear host`). */
let sharedProvider = false;

/**
 * Several services share this process's tracer provider (`interclear host`): a service's own
 * {@link shutdownTracing} leaves it running for the others, and `shutdownTracing({ last: true })`,
 * once every service has stopped, flushes and stops it.
 */
export function shareTracingProvider(): void {
  sharedProvider = true;
}

/** Flushes and stops span export (on shutdown). */
export async function shutdownTracing(options: { last?: boolean } = {}): Promise<void> {
  if (sharedProvider && !options.last) return;
  await provider?.shutdown().catch(() => undefined);
}

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key);
    return values.length === 0 ? undefined : values.map(String);
  },
};

const metadataSetter: TextMapSetter<grpc.Metadata> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** The trace context a caller sent in `metadata`. */
export function extractContext(metadata: grpc.Metadata): Context {
  installGlobals();
  return propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

/** Writes the active trace context into `metadata`. */
export function injectContext(metadata: grpc.Metadata, activeContext: Context = context.active()): void {
  propagation.inject(activeContext, metadata, metadataSetter);
}

/** The active span's W3C traceparent, or null (stored with transfers so forwarders continue it). */
export function currentTraceParent(): string | null {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ?? null;
}

const traceParentPattern = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Whether `value` is a W3C traceparent of version 00 with a non-zero trace id and parent id. */
export function isTraceParent(value: string): boolean {
  return traceParentPattern.test(value);
}

/** A context whose parent is the stored W3C `traceParent` (or the root context when null). */
export function contextFromTraceParent(traceParent: string | null | undefined): Context {
  installGlobals();
  if (!traceParent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent: traceParent });
}

/** Runs `work` in a new span (child of `parent`), ending it with the outcome. */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; parent?: Context; attributes?: Attributes },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const tracer = trace.getTracer(tracerName);
  const parent = options.parent ?? context.active();
  return tracer.startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes },
    parent,
    async (span) => {
      try {
        const result = await work(span);
        span.setStatus({ code: SpanStatusCode.OK });
        return result;
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        const reason = (error as { reason?: string }).reason;
        if (reason) span.setAttribute('interclear.error.reason', reason);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** The id of the active trace, for log lines. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getSpan(context.active())?.spanContext();
  return spanContext && spanContext.traceId !== '00000000000000000000000000000000' ? spanContext.traceId : undefined;
}

/** A client interceptor that sends the active trace context with every call. */
export const tracingClientInterceptor: grpc.Interceptor = (options, nextCall) =>
  new grpcModule.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      injectContext(metadata);
      next(metadata, listener);
    },
  });

export { SpanKind };
