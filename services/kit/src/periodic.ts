import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';

export interface PeriodicTaskOptions {
  name: string;
  /** Pause between the end of one run and the start of the next (runs never overlap). */
  everyMs: number;
  run: () => Promise<unknown>;
  logger: Logger;
  lifecycle: Pick<Lifecycle, 'onShutdown'>;
  /** Delay before the first run; defaults to everyMs. */
  firstRunMs?: number;
}

/**
 * Housekeeping on a timer: runs `run` repeatedly, one run at a time, logging (never throwing)
 * a failed run, and stops on shutdown after the run in progress, if any, finishes. The timer
 * does not keep the process alive.
 */
export function startPeriodicTask({ name, everyMs, run, logger, lifecycle, firstRunMs = everyMs }: PeriodicTaskOptions): void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let current: Promise<void> = Promise.resolve();

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = run().then(
        () => undefined,
        (error: unknown) => logger.warn({ err: error, task: name }, 'periodic task failed'),
      );
      void current.then(() => schedule(everyMs));
    }, delayMs);
    timer.unref();
  };

  schedule(firstRunMs);
  lifecycle.onShutdown(name, () => {
    stopped = true;
    clearTimeout(timer);
    return current;
  });
}
