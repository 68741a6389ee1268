/**
 * Prometheus metrics: one registry per service instance (several may share a process in tests),
 * RPC counts and latencies recorded by the gateway interceptor, and an HTTP endpoint serving
 * /metrics for scraping.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The metrics every Interclear server has. */
export interface ServiceMetrics {
  registry: Registry;
  rpcRequests: Counter<'method' | 'code'>;
  rpcDuration: Histogram<'method' | 'code'>;
}

/** Creates the registry of `service` with the RPC metrics. */
export function createServiceMetrics(service: string, options: { processMetrics?: boolean } = {}): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    rpcRequests: new Counter({
      name: 'interclear_rpc_requests_total',
      help: 'RPCs handled, by method and status code',
      labelNames: ['method', 'code'],
      registers: [registry],
    }),
    rpcDuration: new Histogram({
      name: 'interclear_rpc_duration_seconds',
      help: 'RPC latency from receipt to status, by method and status code',
      labelNames: ['method', 'code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}

/** A gauge whose value is read when scraped. */
export function observedGauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | Promise<number>,
): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      this.set(await read());
    },
  });
}

/** Serves `registry` as text on GET /metrics at `listen` ("host:port"). */
export async function startMetricsServer(
  listen: string,
  registry: Registry,
): Promise<{ address: string; stop(): Promise<void> }> {
  const separator = listen.lastIndexOf(':');
  const host = listen.slice(0, separator);
  const port = Number(listen.slice(separator + 1));
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404).end('not found; metrics are at /metrics\n');
      return;
    }
    registry
      .metrics()
      .then((text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text))
      .catch((error: Error) => response.writeHead(500).end(`${error.message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  return {
    address: `${host}:${boundPort}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
