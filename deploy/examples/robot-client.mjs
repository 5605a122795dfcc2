#!/usr/bin/env node
// A reference robot: publishes one event on its JetStream subject and prints the stream's ack.
//
//   PORTCULLIS_ROBOT_TOKEN=<token> node deploy/examples/robot-client.mjs --kind arm.moved \
//     --attr joint=elbow --attr degrees=42 [--team <team id>] [--assistant <assistant id>]
//
// Subject: `<prefix>.robots.<tenant>.<robot>.events`. Payload: binary portcullis.audit.v1.RobotEvent
// with a fresh UUID event id. Header: `Portcullis-Robot-Token: <token>`. The audit service checks
// the token with the auth service for every message and stores a valid event in the tenant's
// audit trail as kind `robot.<kind>` (see services/audit/README.md, "Robot events").
//
// Settings (flags win over the environment):
//   PORTCULLIS_ROBOT_TOKEN        the robot token, shown once when the robot was created. Only
//                                 from the environment (a flag would show in `ps`); never printed.
//   --nats, NATS_URL              default nats://127.0.0.1:4222
//   --prefix, NATS_SUBJECT_PREFIX default '' (the platform's NATS_SUBJECT_PREFIX)
//   --tenant, --robot             default: the tenant and robot the token names
//   --kind                        dotted event kind, e.g. arm.moved (required)
//   --team, --assistant           optional ids; the team must be one of the robot's
//   --attr key=value              repeatable string attributes
//   --traceparent                 W3C trace context to continue (00-<trace id>-<span id>-01); by
//                                 default a new trace is started. Its trace id is printed, and the
//                                 audit service's spans for this event join that trace.
//
// Run it from a checkout after `pnpm install` and `pnpm exec tsc --build`. This folder is not a
// workspace package: the imports below fall back to the dependencies of services/audit (which
// consumes these events), so nothing needs installing. A robot project of its own installs
// @nats-io/transport-node, @nats-io/jetstream and @bufbuild/protobuf and generates the
// RobotEvent code from proto/portcullis/audit/v1/audit.proto.
import { randomBytes, randomUUID } from 'node:crypto';
import { register } from 'node:module';
import { parseArgs } from 'node:util';

const workspacePackage = new URL('../../services/audit/package.json', import.meta.url).href;
const fallBackToWorkspace = `export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return next(specifier, { ...context, parentURL: ${JSON.stringify(workspacePackage)} });
  }
}`;
register(`data:text/javascript,${encodeURIComponent(fallBackToWorkspace)}`);

const { create, toBinary } = await import('@bufbuild/protobuf');
const { timestampNow } = await import('@bufbuild/protobuf/wkt');
const { jetstream } = await import('@nats-io/jetstream');
const { connect, headers } = await import('@nats-io/transport-node');
const { RobotEventSchema } = await import('@portcullis/proto/audit');

const tokenHeader = 'Portcullis-Robot-Token';

function fail(message) {
  console.error(`robot-client: ${message}`);
  process.exit(2);
}

/** The claims of a JWT, unverified: only to address the subject (the audit service verifies the token). */
function claimsOf(token) {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

const { values } = parseArgs({
  options: {
    nats: { type: 'string', default: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
    prefix: { type: 'string', default: process.env.NATS_SUBJECT_PREFIX ?? '' },
    tenant: { type: 'string' },
    robot: { type: 'string' },
    kind: { type: 'string' },
    team: { type: 'string', default: '' },
    assistant: { type: 'string', default: '' },
    attr: { type: 'string', multiple: true, default: [] },
    traceparent: { type: 'string' },
  },
});

// A robot with OpenTelemetry injects its active context here; this script starts a new trace.
const traceparent = values.traceparent ?? `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
if (!/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/.test(traceparent)) fail('--traceparent must be 00-<32 hex>-<16 hex>-<01|00>');

const token = process.env.PORTCULLIS_ROBOT_TOKEN ?? '';
if (token === '') fail('set PORTCULLIS_ROBOT_TOKEN to the robot token');
if (!values.kind) fail('--kind is required, e.g. --kind arm.moved');
const claims = claimsOf(token);
const tenantId = values.tenant ?? claims.tenantId;
const robotId = values.robot ?? claims.sub;
if (!tenantId || !robotId) fail('--tenant and --robot are required when the token does not name them');

const attributes = {};
for (const pair of values.attr) {
  const at = pair.indexOf('=');
  if (at <= 0) fail(`--attr expects key=value, got "${pair}"`);
  attributes[pair.slice(0, at)] = pair.slice(at + 1);
}

const event = create(RobotEventSchema, {
  eventId: randomUUID(),
  kind: values.kind,
  teamId: values.team,
  assistantId: values.assistant,
  occurredAt: timestampNow(),
  attributes,
});
const subject = `${values.prefix ? `${values.prefix}.` : ''}robots.${tenantId}.${robotId}.events`;

const nc = await connect({ servers: values.nats.split(','), name: 'portcullis-robot-client' });
try {
  const h = headers();
  h.set(tokenHeader, token);
  h.set('traceparent', traceparent);
  // The event id doubles as the JetStream message id: a retried publish is stored once.
  const ack = await jetstream(nc).publish(subject, toBinary(RobotEventSchema, event), { msgID: event.eventId, headers: h });
  const traceId = traceparent.split('-')[1];
  console.log(JSON.stringify({ eventId: event.eventId, traceId, subject, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate }));
} catch (error) {
  console.error(`robot-client: the event was not accepted by JetStream: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await nc.close();
}
