/**
 * The tracer provider's resource: the service's own name, and what OpenTelemetry's standard
 * environment variables add (the Helm chart sets OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
 * with the release, namespace and pod).
 */
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { initTracing, shutdownTracing } from '../../src/platform/tracing';

test('spans carry the environment resource attributes, and OTEL_SERVICE_NAME over the built-in name', async () => {
  process.env.OTEL_SERVICE_NAME = 'interclear-hub-ledger';
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'k8s.namespace.name=clearing,k8s.pod.name=hub-ledger-0';
  const exporter = new InMemorySpanExporter();
  try {
    await initTracing({ serviceName: 'ledger private.hub.', exporter });
    trace.getTracer('test').startSpan('probe').end();
    const [span] = exporter.getFinishedSpans();
    expect(span.resource.attributes).toMatchObject({
      'service.name': 'interclear-hub-ledger',
      'k8s.namespace.name': 'clearing',
      'k8s.pod.name': 'hub-ledger-0',
    });
  } finally {
    delete process.env.OTEL_SERVICE_NAME;
    delete process.env.OTEL_RESOURCE_ATTRIBUTES;
    await shutdownTracing({ last: true });
  }
});
