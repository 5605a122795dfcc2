import type { Logger } from './logger.js';

export interface Lifecycle {
  /** Registers a closer; closers run in reverse order of registration (last opened, first closed). */
  onShutdown(name: string, close: () => unknown): void;
  /** Runs every closer once, bounded by the drain budget; safe to call repeatedly. */
  shutdown(reason: string): Promise<void>;
  /** Installs SIGINT/SIGTERM handlers that shut down and exit. */
  handleSignals(): void;
}

/**
 * Graceful shutdown for a service: stop accepting, drain in-flight work, close connections.
 * `budgetMs` is the whole drain budget; closers still running when it ends are abandoned.
 */
export function createLifecycle({ logger, budgetMs }: { logger: Logger; budgetMs: number }): Lifecycle {
  const closers: { name: string; close: () => unknown }[] = [];
  let stopping: Promise<void> | undefined;

  const runAll = async () => {
    for (const { name, close } of [...closers].reverse()) {
      try {
        await close();
      } catch (error) {
        logger.warn({ err: error, resource: name }, 'error while closing');
      }
    }
  };

  const lifecycle: Lifecycle = {
    onShutdown(name, close) {
      closers.push({ name, close });
    },
    shutdown(reason) {
      stopping ??= (async () => {
        logger.info({ reason, budgetMs }, 'shutting down');
        let timer: NodeJS.Timeout | undefined;
        const budget = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            logger.warn({ budgetMs }, 'drain budget exhausted; abandoning remaining closers');
            resolve();
          }, budgetMs);
        });
        await Promise.race([runAll(), budget]);
        clearTimeout(timer);
      })();
      return stopping;
    },
    handleSignals() {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          void lifecycle.shutdown(signal).then(() => process.exit(0));
        });
      }
    },
  };
  return lifecycle;
}
