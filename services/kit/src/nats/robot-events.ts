import { Match, type MsgHdrs } from '@nats-io/nats-core';
import { isUuid } from '../validate.js';
import { namespaced } from './nats.js';

/**
 * The JetStream stream robots publish their events to, `robots.<tenant>.<robot>.events`
 * (binary `portcullis.audit.v1.RobotEvent`), and the filter a consumer of all of them uses.
 * Namespaced by `NATS_SUBJECT_PREFIX`.
 */
export function robotEventStreamOf(subjectPrefix: string) {
  const every = namespaced(subjectPrefix, 'robots.*.*.events');
  return { name: namespaced(subjectPrefix, 'ROBOT_EVENTS', '_'), subjects: [every], filterSubject: every };
}

/** The subject one robot publishes on. */
export function robotEventSubject(subjectPrefix: string, tenantId: string, robotId: string): string {
  return namespaced(subjectPrefix, `robots.${tenantId}.${robotId}.events`);
}

/** The NATS header carrying the publishing robot's token (matched regardless of case). */
export const robotTokenHeader = 'Portcullis-Robot-Token';

/** Tenant and robot a subject names, lower-cased; undefined unless it is `<prefix>.robots.<uuid>.<uuid>.events`. */
export function parseRobotEventSubject(subject: string, subjectPrefix: string): { tenantId: string; robotId: string } | undefined {
  const base = namespaced(subjectPrefix, 'robots.');
  if (!subject.startsWith(base)) return undefined;
  const parts = subject.slice(base.length).split('.');
  const [tenantId, robotId, last] = parts;
  if (parts.length !== 3 || last !== 'events' || tenantId === undefined || robotId === undefined) return undefined;
  if (!isUuid(tenantId) || !isUuid(robotId)) return undefined;
  return { tenantId: tenantId.toLowerCase(), robotId: robotId.toLowerCase() };
}

/** Every robot token header value of a message (normally exactly one). */
export function robotTokensOf(headers: MsgHdrs | undefined): string[] {
  return headers?.values(robotTokenHeader, Match.IgnoreCase) ?? [];
}
