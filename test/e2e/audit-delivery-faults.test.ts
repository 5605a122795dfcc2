// Delivery guarantees of the audit trail under faults: under a steady load of audited requests
// (an allowed and a denied capability check, each with its own request id), NATS is stopped and
// started again, then the audit service. Every decision the gateway answered must end up in the
// audit database exactly once — none lost, none duplicated — and a request the gateway refused
// because it could not audit it (503, the spool and memory bounds are set small here so that
// happens) has no event at all. Everything is bounded by count and time, so the test stops by itself.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { demo, httpJson } from '../../deploy/local/seed.mjs';
import { infra, pollUntil, testRunId, withPg } from '../src/infra.js';
import { startNatsServer, type NatsServer } from '../src/nats-server.js';
import { signInDemoAccounts, startTestPlatform, type TestPlatform } from '../src/platform.js';

/**
 * The load: a few loops, each sending one request at a time with a short pause (roughly 30–40
 * requests per second in all), alternating the allowed and the denied request. It ends by itself at
 * its bounds.
 */
const load = { loops: 3, pauseMs: 60, maxRequests: 8_000, maxMs: 300_000 };
/**
 * The gateway's audit bounds, small so that a NATS outage of some seconds fills them: events in
 * memory (neither acknowledged nor spooled) and events in the spool.
 */
const gatewayAudit = { maxPending: 150, spoolMaxEvents: 300 };
/** NATS stays down at least this long (past two JetStream ack timeouts, so batches are spooled). */
const natsOutageMinMs = 15_000;
/** The audit service stays down at least this long and this many requests. */
const auditOutage = { minMs: 5_000, minRequests: 100 };
/** Requests answered with a decision after each restart, before the next step. */
const requestsAfterRestart = 60;
/** Bound of the whole test (platform start-up is in beforeAll). */
const testTimeoutMs = 420_000;

/** The two audited requests: Alpha Corp's owner may read the context; its user may not read the audit trail. */
const requests = [
  { name: 'allowed', path: '/api/context', person: 'owner', status: 200, outcome: 'allow' },
  { name: 'denied', path: '/api/audit/events', person: 'user', status: 403, outcome: 'deny' },
] as const;

interface Sample {
  requestId: string;
  request: (typeof requests)[number];
  startedAt: number;
  endedAt: number;
  /** HTTP status; 0 means no HTTP answer. */
  status: number;
  code: string;
  message: string;
}

/** The refusal of a request whose decision could not be audited (pipeline/audit-decision, kit background publisher). */
const auditRefusal = 'the audit trail is unavailable; request denied';
const isAuditRefusal = (sample: Sample) => sample.status === 503 && sample.message === auditRefusal;
/** What the audit trail must hold for a sample: its decision, once; nothing for a refused one; undefined when unexpected. */
function expectedOutcomes(sample: Sample): string[] | undefined {
  if (sample.status === sample.request.status) return [sample.request.outcome];
  if (isAuditRefusal(sample)) return [];
  return undefined;
}

const tally = (samples: readonly Sample[]) => {
  const counts: Record<string, number> = {};
  for (const { request, status, code } of samples) {
    const key = `${request.name} → ${status} ${code}`.trimEnd();
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
};

describe('audit delivery: every decision is stored exactly once through a NATS restart and an audit service restart', () => {
  let nats: NatsServer;
  let platform: TestPlatform;
  let tokens: Record<'owner' | 'user', string>;
  /** Every request id of this test starts with it. */
  const idPrefix = `${testRunId}-ad`;

  beforeAll(async () => {
    // A NATS of this test alone: stopping it must not touch the shared one other runs use.
    nats = await startNatsServer();
    platform = await startTestPlatform({
      natsUrl: nats.url,
      extraEnv: {
        'api-gateway': {
          AUDIT_MAX_PENDING: String(gatewayAudit.maxPending),
          AUDIT_SPOOL_MAX_EVENTS: String(gatewayAudit.spoolMaxEvents),
        },
      },
    });
    const { owner, user } = await signInDemoAccounts(platform);
    tokens = { owner, user };
  }, 180_000);

  afterAll(async () => {
    // beforeAll may have failed before these existed.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await platform?.stop();
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await nats?.close();
  }, 60_000);

  async function send(request: (typeof requests)[number], requestId: string): Promise<Sample> {
    const startedAt = performance.now();
    try {
      const response = await httpJson(platform.gatewayUrl, 'GET', request.path, {
        token: tokens[request.person],
        host: demo.host,
        headers: { 'x-request-id': requestId },
      });
      const error = (response.body as { error?: { code?: string; message?: string } } | null)?.error;
      return {
        requestId,
        request,
        startedAt,
        endedAt: performance.now(),
        status: response.status,
        code: error?.code ?? '',
        message: error?.message ?? '',
      };
    } catch (error) {
      return { requestId, request, startedAt, endedAt: performance.now(), status: 0, code: String(error), message: '' };
    }
  }

  /** Starts the load; `stop()` ends it and waits for the requests in flight. */
  function startLoad() {
    const samples: Sample[] = [];
    const deadline = performance.now() + load.maxMs;
    let stopped = false;
    let sent = 0;
    const loop = async () => {
      while (!stopped && sent < load.maxRequests && performance.now() < deadline) {
        const turn = sent++;
        samples.push(await send(requests[turn % requests.length]!, `${idPrefix}-${turn}`));
        await sleep(load.pauseMs);
      }
    };
    const running = Promise.all(Array.from({ length: load.loops }, loop));
    return {
      samples,
      async stop() {
        stopped = true;
        await running;
      },
    };
  }

  const gatewaySpoolFiles = async () =>
    (await readdir(join(platform.auditSpoolDir, 'api-gateway')).catch(() => [])).filter((name) => name.endsWith('.batch'));

  /** Stored decision events of this test: request id → outcomes (one entry per stored event). */
  async function storedDecisions(): Promise<Map<string, string[]>> {
    const url = new URL(infra.postgresAdminUrl);
    url.pathname = `/pc_${testRunId}_audit`;
    const { rows } = await withPg(url.toString(), (client) =>
      client.query<{ request_id: string; outcome: string | null }>(
        "SELECT request_id, outcome FROM audit_events WHERE kind = 'authz.decision' AND request_id LIKE $1",
        [`${idPrefix}-%`],
      ),
    );
    const stored = new Map<string, string[]>();
    for (const { request_id: requestId, outcome } of rows)
      stored.set(requestId, [...(stored.get(requestId) ?? []), (outcome ?? '').toLowerCase()]);
    return stored;
  }

  it(
    'NATS stopped and started, then the audit service: no decision lost, none duplicated, none allowed unaudited',
    async () => {
      const traffic = startLoad();
      const since = (moment: number) => traffic.samples.filter((sample) => sample.startedAt >= moment);
      const decided = (samples: readonly Sample[]) => samples.filter((sample) => sample.status === sample.request.status);
      let natsDown = false;
      let auditDown = false;
      const moments = { natsStopped: 0, natsRestarted: 0, auditStopped: 0, auditRestarted: 0 };
      let spoolFilesSeen = 0;
      try {
        await pollUntil(() => (decided(traffic.samples).length >= 30 ? true : undefined), {
          timeoutMs: 20_000,
          what: 'decisions before the NATS outage',
        });

        // NATS away: the gateway keeps deciding while it can keep the events, in memory and then in
        // its spool; beyond those bounds it refuses (503).
        natsDown = true;
        await nats.stop();
        moments.natsStopped = performance.now();
        await pollUntil(
          async () => {
            spoolFilesSeen = Math.max(spoolFilesSeen, (await gatewaySpoolFiles()).length);
            const down = since(moments.natsStopped);
            return performance.now() - moments.natsStopped >= natsOutageMinMs && spoolFilesSeen > 0 && down.some(isAuditRefusal)
              ? true
              : undefined;
          },
          { timeoutMs: 90_000, intervalMs: 250, what: 'the gateway to spool events and then refuse while NATS is down' },
        );
        moments.natsRestarted = performance.now();
        await nats.start();
        natsDown = false;
        // The spool is replayed and emptied; decisions go on.
        await pollUntil(
          async () =>
            (await gatewaySpoolFiles()).length === 0 && decided(since(moments.natsRestarted)).length >= requestsAfterRestart
              ? true
              : undefined,
          { timeoutMs: 90_000, intervalMs: 250, what: 'the gateway spool to be replayed after NATS returned' },
        );

        // The audit service away: JetStream keeps the events until its consumer is back.
        auditDown = true;
        await platform.stopService('audit');
        moments.auditStopped = performance.now();
        await pollUntil(
          () =>
            performance.now() - moments.auditStopped >= auditOutage.minMs && since(moments.auditStopped).length >= auditOutage.minRequests
              ? true
              : undefined,
          { timeoutMs: 30_000, what: 'requests while the audit service is down' },
        );
        moments.auditRestarted = performance.now();
        platform.restartService('audit');
        auditDown = false;
        await pollUntil(
          async () => {
            const response = await fetch(`http://127.0.0.1:${platform.ports.audit.admin}/readyz`, { signal: AbortSignal.timeout(1_000) });
            return response.ok ? true : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 250, what: 'the audit service to be ready again' },
        );
        const auditReadyAt = performance.now();
        await pollUntil(() => (decided(since(auditReadyAt)).length >= requestsAfterRestart ? true : undefined), {
          timeoutMs: 30_000,
          what: 'decisions after the audit service returned',
        });
      } finally {
        await traffic.stop();
        if (natsDown) await nats.start();
        if (auditDown) platform.restartService('audit');
      }

      const samples = traffic.samples;
      const expected = new Map(samples.map((sample) => [sample.requestId, expectedOutcomes(sample)]));
      const decisions = samples.filter((sample) => expectedOutcomes(sample)?.length === 1).length;
      // Bounded wait until every decision is in the audit database (JetStream delivers the backlog).
      let stored = await storedDecisions();
      for (const deadline = performance.now() + 90_000; stored.size < decisions && performance.now() < deadline;) {
        await sleep(500);
        stored = await storedDecisions();
      }

      const natsOutage = samples.filter((s) => s.startedAt >= moments.natsStopped && s.endedAt <= moments.natsRestarted);
      const auditOutageSamples = samples.filter((s) => s.startedAt >= moments.auditStopped && s.endedAt <= moments.auditRestarted);
      const missing = samples
        .filter((s) => (expected.get(s.requestId)?.length ?? 0) > 0 && !stored.has(s.requestId))
        .map((s) => s.requestId);
      const duplicated = [...stored].filter(([, outcomes]) => outcomes.length > 1).map(([requestId]) => requestId);
      const wrong = samples
        .filter((s) => {
          const want = expected.get(s.requestId);
          const got = stored.get(s.requestId) ?? [];
          return want !== undefined && want.length > 0 && got.length === 1 && got[0] !== want[0];
        })
        .map((s) => s.requestId);
      const unexpectedAnswers = samples.filter((s) => expectedOutcomes(s) === undefined);
      const refused = samples.filter(isAuditRefusal);
      const allowedUnaudited = refused.filter((s) => (stored.get(s.requestId) ?? []).includes('allow')).map((s) => s.requestId);
      const storedForRefused = refused.filter((s) => stored.has(s.requestId)).map((s) => s.requestId);
      const strangers = [...stored.keys()].filter((requestId) => !expected.has(requestId));
      const storedTotal = [...stored.values()].reduce((sum, outcomes) => sum + outcomes.length, 0);
      const seconds = (ms: number) => Math.round(ms) / 1000;
      console.info(
        `audit delivery: ${samples.length} requests, ${decisions} decisions, ${storedTotal} decision events stored; ` +
          `NATS down ${seconds(moments.natsRestarted - moments.natsStopped)} s (${spoolFilesSeen} spool files at most), ` +
          `audit down ${seconds(moments.auditRestarted - moments.auditStopped)} s\n` +
          JSON.stringify({ all: tally(samples), natsOutage: tally(natsOutage), auditOutage: tally(auditOutageSamples) }, null, 2),
      );

      // Every request was answered with its decision, or refused because it could not be audited.
      expect(unexpectedAnswers.map((s) => `${s.request.name} → ${s.status} ${s.code} ${s.message}`)).toEqual([]);
      // Exactly once: none lost, none duplicated, each with its own outcome, nothing else stored.
      expect({ missing, duplicated, wrong, strangers }).toEqual({ missing: [], duplicated: [], wrong: [], strangers: [] });
      expect(storedTotal).toBe(decisions);
      // Never allowed unaudited: a refused request has no event at all.
      expect({ allowedUnaudited, storedForRefused }).toEqual({ allowedUnaudited: [], storedForRefused: [] });
      // The faults happened under load: decisions were made (and later stored) while NATS was down,
      // spooled, and refused beyond the bounds; and while the audit service was down.
      expect(spoolFilesSeen).toBeGreaterThan(0);
      expect(decided(natsOutage).length).toBeGreaterThan(0);
      expect(natsOutage.filter(isAuditRefusal).length).toBeGreaterThan(0);
      expect(decided(auditOutageSamples).length).toBeGreaterThanOrEqual(auditOutage.minRequests / 2);
    },
    testTimeoutMs,
  );
});
