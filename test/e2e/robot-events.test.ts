import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { createGrpcClient } from '@portcullis/kit';
import { AuditService } from '@portcullis/proto/audit';
import { demo, httpJson } from '../../deploy/local/seed.mjs';
import { infra, pollUntil } from '../src/infra.js';
import { useDemoPlatform } from '../src/platform.js';

const execFileAsync = promisify(execFile);
const robotClient = new URL('../../deploy/examples/robot-client.mjs', import.meta.url).pathname;

interface Created {
  robot: { id: string };
  token: string;
}
interface ListedEvent {
  eventId: string;
  kind: string;
  outcome: string;
  object: string;
  principal: { kind: string; id: string } | null;
  attributes: Record<string, string>;
}
interface Ack {
  eventId: string;
  subject: string;
  stream: string;
  seq: number;
  duplicate: boolean;
}

describe('robot events through the whole platform, published by the reference client', () => {
  const run = useDemoPlatform();

  const call = (token: string, method: string, path: string, body?: unknown) =>
    httpJson(run.platform.gatewayUrl, method, path, { token, host: demo.host, ...(body === undefined ? {} : { body }) });

  /** Runs deploy/examples/robot-client.mjs as a robot would, with its token in the environment only. */
  async function publishAsRobot(token: string, args: string[]): Promise<Ack> {
    const { stdout, stderr } = await execFileAsync(process.execPath, [robotClient, ...args], {
      env: {
        PATH: process.env['PATH'] ?? '',
        PORTCULLIS_ROBOT_TOKEN: token,
        NATS_URL: infra.natsUrl,
        NATS_SUBJECT_PREFIX: run.platform.natsSubjectPrefix,
      },
    });
    expect(`${stdout}${stderr}`).not.toContain(token);
    return JSON.parse(stdout) as Ack;
  }

  const createRobot = async (name: string, teamIds: string[]) => {
    const response = await call(run.tokens.owner, 'POST', '/api/robots', { name, teamIds });
    expect(response.status).toBe(201);
    return response.body as Created;
  };

  /** Alpha Corp's audit trail as its owner reads it through the gateway. */
  const alphaTrail = async () => {
    const response = await call(run.tokens.owner, 'GET', '/api/audit/events?pageSize=200');
    if (response.status !== 200) throw new Error(`GET /api/audit/events answered ${response.status}: ${JSON.stringify(response.body)}`);
    return (response.body as { events: ListedEvent[] }).events;
  };

  /** A series of the audit service's /metrics, 0 when absent. */
  async function auditMetric(name: string, reason?: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${run.platform.ports.audit.admin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && (reason === undefined || l.includes(`reason="${reason}"`)));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  }

  it("stores a valid robot event in its tenant's trail; a revoked robot's and a cross-tenant one are rejected, counted and not stored", async () => {
    const { seeded } = run.platform;
    const teamResponse = await call(run.tokens.owner, 'POST', '/api/teams', { name: 'Arm operators' });
    expect(teamResponse.status).toBe(201);
    const team = (teamResponse.body as { teamId: string }).teamId;
    const robot = await createRobot('arm controller', [team]);

    // A valid event: on the robot's own subject (taken from its token), about one of its teams.
    const valid = await publishAsRobot(robot.token, [
      '--kind',
      'arm.moved',
      '--team',
      team,
      '--attr',
      'joint=elbow',
      '--attr',
      'degrees=42',
    ]);
    expect(valid).toMatchObject({
      subject: `${run.platform.natsSubjectPrefix}.robots.${seeded.tenantId}.${robot.robot.id}.events`,
      duplicate: false,
    });
    const listed = await pollUntil(async () => (await alphaTrail()).find((e) => e.eventId === valid.eventId), {
      timeoutMs: 15_000,
      what: 'the robot event in the audit trail',
    });
    expect(listed).toMatchObject({
      kind: 'robot.arm.moved',
      outcome: 'success',
      object: `team:${team}`,
      principal: { kind: 'robot', id: robot.robot.id },
      attributes: { joint: 'elbow', degrees: '42' },
    });
    expect(await auditMetric('portcullis_robot_events_stored_total')).toBeGreaterThanOrEqual(1);

    // A revoked robot: auth refuses its token from the next message on.
    const revokedRobot = await createRobot('retired arm', [team]);
    expect((await call(run.tokens.owner, 'DELETE', `/api/robots/${revokedRobot.robot.id}`)).status).toBe(204);
    const revoked = await publishAsRobot(revokedRobot.token, ['--kind', 'arm.moved', '--team', team]);

    // A valid token of Alpha Corp's robot, published on Beta Labs' subject.
    const crossTenant = await publishAsRobot(robot.token, ['--kind', 'arm.moved', '--tenant', seeded.beta.tenantId]);
    expect(crossTenant.subject).toBe(`${run.platform.natsSubjectPrefix}.robots.${seeded.beta.tenantId}.${robot.robot.id}.events`);

    // Both were judged (counted by reason) and acknowledged; neither is in any trail.
    await pollUntil(
      async () =>
        (await auditMetric('portcullis_robot_events_rejected_total', 'invalid_token')) >= 1 &&
        (await auditMetric('portcullis_robot_events_rejected_total', 'cross_tenant')) >= 1
          ? true
          : undefined,
      { timeoutMs: 15_000, what: 'both rejections to be counted' },
    );
    const alphaIds = (await alphaTrail()).map((e) => e.eventId);
    expect(alphaIds).toContain(valid.eventId);
    expect(alphaIds).not.toContain(revoked.eventId);
    expect(alphaIds).not.toContain(crossTenant.eventId);
    const audit = createGrpcClient(AuditService, {
      address: `127.0.0.1:${run.platform.ports.audit.grpc}`,
      deadlineMs: 5_000,
      credential: run.platform.identityOf('platform-ops').credentialFor('audit'),
    });
    try {
      const beta = await audit.listEvents({ tenantId: seeded.beta.tenantId, pageSize: 200 });
      expect(beta.events.map((e) => e.eventId)).not.toContain(crossTenant.eventId);
      expect(beta.events.filter((e) => e.kind.startsWith('robot.'))).toEqual([]);
    } finally {
      audit.close();
    }
  });
});
