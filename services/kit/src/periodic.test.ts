import { describe, expect, it } from '@jest/globals';
import { createLifecycle } from './lifecycle.js';
import { createLogger } from './logger.js';
import { startPeriodicTask } from './periodic.js';

function setup() {
  const lines: string[] = [];
  const logger = createLogger({ name: 'periodic-test', level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  return { lines, logger, lifecycle: createLifecycle({ logger, budgetMs: 1_000 }) };
}

const waitFor = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1));
};

describe('startPeriodicTask', () => {
  it('runs repeatedly, keeps going after a failed run, and logs the failure', async () => {
    const { lines, logger, lifecycle } = setup();
    let runs = 0;
    startPeriodicTask({
      name: 'flaky',
      everyMs: 1,
      firstRunMs: 0,
      logger,
      lifecycle,
      run: () => {
        runs += 1;
        return runs === 1 ? Promise.reject(new Error('first run fails')) : Promise.resolve();
      },
    });
    await waitFor(() => runs >= 3);
    await lifecycle.shutdown('test');
    expect(lines.join('')).toContain('periodic task failed');
    expect(lines.join('')).toContain('first run fails');
  });

  it('never overlaps runs and stops after shutdown, once the run in progress has finished', async () => {
    const { logger, lifecycle } = setup();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let finishRun: (() => void) | undefined;
    startPeriodicTask({
      name: 'slow',
      everyMs: 0,
      firstRunMs: 0,
      logger,
      lifecycle,
      run: async () => {
        runs += 1;
        active += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((resolve) => (finishRun = resolve));
        active -= 1;
      },
    });
    await waitFor(() => runs === 1);
    let stopped = false;
    const stopping = lifecycle.shutdown('test').then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(stopped).toBe(false);
    finishRun?.();
    await stopping;
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(runs).toBe(1);
    expect(maxActive).toBe(1);
  });
});
