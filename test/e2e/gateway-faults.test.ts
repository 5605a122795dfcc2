// Fault tests: under a steady load of authorized requests, the policy service, tenant-registry
// and Redis are stopped in turn. While one is down the gateway allows nothing — every request
// gets 503 DEPENDENCY_UNAVAILABLE, even one a cache could answer — and once it returns, the same
// requests succeed again. Everything is bounded by count and time, so the test stops by itself.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { demo, httpJson } from '../../deploy/local/seed.mjs';
import { pollUntil } from '../src/infra.js';
import { signInDemoAccounts, startTestPlatform, type TestPlatform } from '../src/platform.js';
import { startRedisServer, type RedisServer } from '../src/redis-server.js';

/**
 * The load: a few loops, each sending one request at a time with a pause between them (about 25
 * requests per second in all, one to two hundred per phase), taking turns between Alpha Corp's
 * owner and admin. The gateway's default limits (free plan: 300 requests per person and 1,200 per
 * tenant per minute) count every phase together, so the turns keep each person near half of theirs,
 * and the load slows down while a restarted dependency comes up, however long that takes.
 */
const load = { loops: 3, pauseMs: 100, restartPauseMs: 300, maxRequestsPerPhase: 400, maxPhaseMs: 90_000 };
/** A dependency stays down at least this long, and at least this many requests start and end while it is. */
const outage = { minMs: 3_000, minRequests: 40 };
/** Requests that must all succeed once the gateway has answered again after the restart. */
const requestsAfterResuming = 20;
/** The bound of one phase (start-up of a restarted service included). */
const phaseTimeoutMs = 150_000;

/** The authorized requests of the load, on Alpha Corp's domain (its owner and admin may make both). */
const requests = [
  { name: 'GET /api/context', method: 'GET', path: '/api/context' },
  {
    name: `POST /api/tools/${demo.toolName}/invoke`,
    method: 'POST',
    path: `/api/tools/${demo.toolName}/invoke`,
    body: { input: { x: 1 } },
  },
] as const;

/** One request of the load. Times are `performance.now()` of this process; status 0 means no HTTP answer. */
interface Sample {
  request: string;
  startedAt: number;
  endedAt: number;
  status: number;
  /** `error.code` of the body, or the network error; empty for none. */
  code: string;
}

/** One phase: the load's samples and the moments the dependency went and came back. */
interface Outage {
  samples: Sample[];
  stoppingAt: number;
  /** The stop has completed: the dependency is gone. */
  stoppedAt: number;
  /** The restart begins. */
  restartingAt: number;
  /** Every request of the load has succeeded again since the restart began. */
  resumedAt: number;
}

interface Dependency {
  stop(): Promise<void>;
  start(): Promise<void> | void;
}

function countBy(samples: readonly Sample[], key: (sample: Sample) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const sample of samples) counts[key(sample)] = (counts[key(sample)] ?? 0) + 1;
  return counts;
}

/** Counts answers as `<request> → <status> <code>`, so a failed assertion shows exactly what came back. */
const tally = (samples: readonly Sample[]) => countBy(samples, ({ request, status, code }) => `${request} → ${status} ${code}`.trimEnd());

/** The tally `samples` would have if every one of them had got `answer` (e.g. `200`). */
const tallyIfAll = (samples: readonly Sample[], answer: string) => countBy(samples, ({ request }) => `${request} → ${answer}`);

describe('the gateway allows nothing while a dependency of the decision is down, and resumes when it returns', () => {
  let redis: RedisServer;
  let platform: TestPlatform;
  /** Access tokens of Alpha Corp's owner and admin. */
  let people: string[];

  beforeAll(async () => {
    // A Redis of this test alone: stopping it must not touch the shared one other runs use.
    redis = await startRedisServer();
    platform = await startTestPlatform({ redisUrl: redis.url });
    const { owner, admin } = await signInDemoAccounts(platform);
    people = [owner, admin];
  }, 180_000);

  afterAll(async () => {
    // beforeAll may have failed before these existed.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await platform?.stop();
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await redis?.close();
  }, 60_000);

  async function send(request: (typeof requests)[number], token: string): Promise<Sample> {
    const startedAt = performance.now();
    try {
      const response = await httpJson(platform.gatewayUrl, request.method, request.path, {
        token,
        host: demo.host,
        ...('body' in request ? { body: request.body } : {}),
      });
      const code = (response.body as { error?: { code?: string } } | null)?.error?.code ?? '';
      return { request: request.name, startedAt, endedAt: performance.now(), status: response.status, code };
    } catch (error) {
      return { request: request.name, startedAt, endedAt: performance.now(), status: 0, code: String(error) };
    }
  }

  /**
   * Starts the load; `pace(ms)` changes the pause between a loop's requests, `stop()` ends it and
   * waits for the requests in flight. It also ends by itself at its bounds.
   */
  function startLoad() {
    const samples: Sample[] = [];
    const deadline = performance.now() + load.maxPhaseMs;
    let stopped = false;
    let sent = 0;
    let pauseMs = load.pauseMs;
    const loop = async () => {
      while (!stopped && sent < load.maxRequestsPerPhase && performance.now() < deadline) {
        // Every request with every person in turn.
        const turn = sent++;
        samples.push(await send(requests[turn % requests.length]!, people[Math.floor(turn / requests.length) % people.length]!));
        await sleep(pauseMs);
      }
    };
    const running = Promise.all(Array.from({ length: load.loops }, loop));
    return {
      samples,
      pace(ms: number) {
        pauseMs = ms;
      },
      async stop() {
        stopped = true;
        await running;
      },
    };
  }

  /**
   * Under load: requests succeed, the dependency is stopped and stays down for the outage's
   * bounds, then it is started again and the load runs until every request has succeeded again
   * and some more have been sent. A phase that fails half-way still restarts the dependency.
   */
  async function withOutage(dependency: Dependency): Promise<Outage> {
    const traffic = startLoad();
    const since = (moment: number) => traffic.samples.filter((sample) => sample.startedAt >= moment);
    let down = false;
    try {
      await pollUntil(() => (traffic.samples.length >= 20 ? true : undefined), { timeoutMs: 10_000, what: 'requests before the outage' });
      const stoppingAt = performance.now();
      down = true;
      await dependency.stop();
      const stoppedAt = performance.now();
      await pollUntil(
        () => (performance.now() - stoppedAt >= outage.minMs && since(stoppedAt).length >= outage.minRequests ? true : undefined),
        { timeoutMs: 20_000, what: `${outage.minRequests} requests during the outage` },
      );
      const restartingAt = performance.now();
      traffic.pace(load.restartPauseMs);
      await dependency.start();
      down = false;
      await pollUntil(
        () => {
          const answered = since(restartingAt);
          return requests.every(({ name }) => answered.some((sample) => sample.request === name && sample.status === 200))
            ? true
            : undefined;
        },
        { timeoutMs: 60_000, what: 'every request to succeed again after the restart' },
      );
      const resumedAt = performance.now();
      traffic.pace(load.pauseMs);
      await pollUntil(() => (since(resumedAt).length >= requestsAfterResuming ? true : undefined), {
        timeoutMs: 20_000,
        what: 'requests after resuming',
      });
      return { samples: traffic.samples, stoppingAt, stoppedAt, restartingAt, resumedAt };
    } finally {
      await traffic.stop();
      if (down) await dependency.start();
    }
  }

  /** The phase's assertions: all succeed before, none is allowed while down (each a 503 DEPENDENCY_UNAVAILABLE), all succeed after. */
  function expectFailClosed(name: string, { samples, stoppingAt, stoppedAt, restartingAt, resumedAt }: Outage) {
    const before = samples.filter((sample) => sample.endedAt <= stoppingAt);
    const down = samples.filter((sample) => sample.startedAt >= stoppedAt && sample.endedAt <= restartingAt);
    const after = samples.filter((sample) => sample.startedAt >= resumedAt);
    const allowedWhileDown = down.filter((sample) => sample.status >= 200 && sample.status < 300).length;
    const seconds = (ms: number) => Math.round(ms) / 1000;
    console.info(
      `${name} phase: ${samples.length} requests; stop took ${seconds(stoppedAt - stoppingAt)} s, down ${seconds(restartingAt - stoppedAt)} s, ` +
        `resumed ${seconds(resumedAt - restartingAt)} s after the restart began\n` +
        JSON.stringify({ before: tally(before), down: tally(down), allowedWhileDown, after: tally(after) }, null, 2),
    );

    expect(tally(before)).toEqual(tallyIfAll(before, '200'));
    expect(down.length).toBeGreaterThanOrEqual(outage.minRequests);
    expect({ allowedWhileDown, answers: tally(down) }).toEqual({
      allowedWhileDown: 0,
      answers: tallyIfAll(down, '503 DEPENDENCY_UNAVAILABLE'),
    });
    expect(after.length).toBeGreaterThanOrEqual(requestsAfterResuming);
    expect(tally(after)).toEqual(tallyIfAll(after, '200'));
  }

  it(
    'policy service stopped: no request allowed until it returns',
    async () => {
      const phase = await withOutage({ stop: () => platform.stopService('policy'), start: () => platform.restartService('policy') });
      expectFailClosed('policy', phase);
    },
    phaseTimeoutMs,
  );

  it(
    'tenant-registry stopped: no request allowed — not even from the context cache — until it returns',
    async () => {
      const phase = await withOutage({
        stop: () => platform.stopService('tenant-registry'),
        start: () => platform.restartService('tenant-registry'),
      });
      expectFailClosed('tenant-registry', phase);
    },
    phaseTimeoutMs,
  );

  it(
    'Redis stopped: no request allowed until it returns',
    async () => {
      const phase = await withOutage({ stop: () => redis.stop(), start: () => redis.start() });
      expectFailClosed('Redis', phase);
    },
    phaseTimeoutMs,
  );
});
