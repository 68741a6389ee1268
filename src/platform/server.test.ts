import * as grpc from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus as ServingStatus, HealthClient } from '../gen/grpc/health/v1/health';
import { LIVENESS_HEALTH_SERVICE_NAME, OVERALL_HEALTH_SERVICE_NAME } from './health';
import { startServer, type RunningServer } from './server';

function check(client: HealthClient, service: string): Promise<ServingStatus> {
  return new Promise((resolve, reject) =>
    client.check({ service }, (error, response) => (error ? reject(error) : resolve(response.status))),
  );
}

describe('startServer health', () => {
  let running: RunningServer;
  let probe: HealthClient;

  beforeEach(async () => {
    running = await startServer({ address: '127.0.0.1:0', services: [], healthAddress: '127.0.0.1:0' });
    // What the kubelet's gRPC probes call: the plaintext health-only listener.
    probe = new HealthClient(running.healthAddress!, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    probe.close();
    await running.stop(0);
  });

  test('reports "liveness" SERVING while the server as a whole is NOT_SERVING (a dependency down)', async () => {
    expect(running.healthAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await check(probe, OVERALL_HEALTH_SERVICE_NAME)).toBe(ServingStatus.NOT_SERVING);
    expect(await check(probe, LIVENESS_HEALTH_SERVICE_NAME)).toBe(ServingStatus.SERVING);

    // A service reports its readiness on "" (as the ledger does when its database answers again,
    // and back when it stops answering); liveness does not follow it.
    running.health.setStatus(OVERALL_HEALTH_SERVICE_NAME, ServingStatus.SERVING);
    expect(await check(probe, OVERALL_HEALTH_SERVICE_NAME)).toBe(ServingStatus.SERVING);
    running.health.setStatus(OVERALL_HEALTH_SERVICE_NAME, ServingStatus.NOT_SERVING);
    expect(await check(probe, OVERALL_HEALTH_SERVICE_NAME)).toBe(ServingStatus.NOT_SERVING);
    expect(await check(probe, LIVENESS_HEALTH_SERVICE_NAME)).toBe(ServingStatus.SERVING);
  });

  test('reports "liveness" NOT_SERVING once the server shuts its health down', async () => {
    // stop() begins with health.shutdown(); called alone here, the listener still answers.
    running.health.shutdown();

    expect(await check(probe, LIVENESS_HEALTH_SERVICE_NAME)).toBe(ServingStatus.NOT_SERVING);
    expect(await check(probe, OVERALL_HEALTH_SERVICE_NAME)).toBe(ServingStatus.NOT_SERVING);
  });
});
