import { createAdminServer } from './admin-server.js';
import { migrate } from './db/migrate.js';
import { createGrpcServer, type ServiceRegistration } from './grpc/server.js';
import { createServiceIdentity, type ServiceIdentity } from './grpc/service-credentials.js';
import type { KeyObject } from 'node:crypto';
import { createLifecycle, type Lifecycle } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Registry } from './metrics/metrics.js';
import { startTelemetry } from './telemetry/telemetry.js';

export interface RuntimeConfig {
  LOG_LEVEL: string;
  LISTEN_HOST: string;
  /** Required when the service serves gRPC. */
  GRPC_PORT?: number;
  ADMIN_PORT: number;
  SHUTDOWN_BUDGET_MS: number;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  DATABASE_URL?: string;
  DATABASE_ADMIN_URL?: string | undefined;
  SERVICE_IDENTITY_KEY: KeyObject;
  SERVICE_TRUST: ReadonlyMap<string, readonly KeyObject[]>;
}

export interface ServiceParts {
  /** gRPC services to serve on GRPC_PORT (with health and reflection); none for HTTP-only processes. */
  services?: readonly ServiceRegistration[];
  /** Extra readiness condition beyond "the gRPC server is listening". */
  isReady?: () => boolean | Promise<boolean>;
}

export interface RunServiceOptions<C extends RuntimeConfig> {
  name: string;
  config: C;
  /** Prisma-layout migrations folder; applied on start when DATABASE_ADMIN_URL is set. */
  migrationsDir?: string;
  appendOnlyTables?: readonly string[];
  /** Tables the app role may update but never delete from or truncate. */
  undeletableTables?: readonly string[];
  /**
   * Opens the service's connections (registering their closers) and returns its gRPC services.
   * `identity` signs this service's calls to others (`identity.credentialFor(<service>)`);
   * `metrics` is the process's Prometheus registry (served on the admin port's `/metrics`),
   * where the service registers its own counters and histograms.
   */
  start(runtime: { logger: Logger; lifecycle: Lifecycle; identity: ServiceIdentity; metrics: Registry }): Promise<ServiceParts>;
}

/**
 * The start-up and shutdown sequence every process shares: telemetry first, then logger,
 * migrations, the service's own wiring (which may open its own listeners, e.g. the
 * gateway's HTTP server), gRPC (with health + reflection) when it has services, and the
 * admin endpoint. On a start-up failure it logs, closes what was opened and exits non-zero.
 */
export async function runService<C extends RuntimeConfig>({
  name,
  config,
  migrationsDir,
  appendOnlyTables,
  undeletableTables,
  start,
}: RunServiceOptions<C>): Promise<void> {
  const telemetry = startTelemetry({ serviceName: name, settings: config });
  const logger = createLogger({ name, level: config.LOG_LEVEL });
  const metrics = createMetrics({ service: name });
  const lifecycle = createLifecycle({ logger, budgetMs: config.SHUTDOWN_BUDGET_MS });
  lifecycle.onShutdown('telemetry', () => telemetry.shutdown());
  lifecycle.handleSignals();
  try {
    if (migrationsDir && config.DATABASE_ADMIN_URL && config.DATABASE_URL) {
      await migrate({
        adminUrl: config.DATABASE_ADMIN_URL,
        appUrl: config.DATABASE_URL,
        migrationsDir,
        appendOnlyTables: appendOnlyTables ?? [],
        undeletableTables: undeletableTables ?? [],
        logger,
      });
    }
    const identity = createServiceIdentity({ name, privateKey: config.SERVICE_IDENTITY_KEY, trust: config.SERVICE_TRUST });
    const parts = await start({ logger, lifecycle, identity, metrics });
    const services = parts.services ?? [];
    const grpc = services.length > 0 ? createGrpcServer({ logger, services, identity, metrics }) : undefined;
    let grpcPort: number | undefined;
    if (grpc) {
      if (config.GRPC_PORT === undefined) throw new Error('GRPC_PORT is required to serve gRPC');
      grpcPort = await grpc.listen(config.LISTEN_HOST, config.GRPC_PORT);
      lifecycle.onShutdown('grpc', () => grpc.drain(config.SHUTDOWN_BUDGET_MS / 2));
    }
    let serving = true;
    lifecycle.onShutdown('readiness', () => {
      serving = false;
    });
    const admin = createAdminServer({
      isReady: async () => serving && (parts.isReady ? await parts.isReady() : true),
      metrics,
    });
    const adminPort = await admin.listen(config.LISTEN_HOST, config.ADMIN_PORT);
    lifecycle.onShutdown('admin', () => admin.close());
    grpc?.setServing(true);
    logger.info({ grpcPort, adminPort }, `${name} ready`);
  } catch (error) {
    logger.fatal({ err: error }, `${name} failed to start`);
    await lifecycle.shutdown('start-up failure');
    process.exit(1);
  }
}
