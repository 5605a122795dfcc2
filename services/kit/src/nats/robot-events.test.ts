import { describe, expect, it } from '@jest/globals';
import { headers } from '@nats-io/nats-core';
import fc from 'fast-check';
import { parseRobotEventSubject, robotEventStreamOf, robotEventSubject, robotTokensOf } from './robot-events.js';

const tenantId = '3f1c2b9e-8a4d-4c2e-9b7a-1d2e3f405162';
const robotId = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';

describe('robot event subjects', () => {
  it('names the stream, its filter and one robot subject under the prefix', () => {
    expect(robotEventStreamOf('run1')).toEqual({
      name: 'run1_ROBOT_EVENTS',
      subjects: ['run1.robots.*.*.events'],
      filterSubject: 'run1.robots.*.*.events',
    });
    expect(robotEventStreamOf('')).toMatchObject({ name: 'ROBOT_EVENTS', subjects: ['robots.*.*.events'] });
    expect(robotEventSubject('run1', tenantId, robotId)).toBe(`run1.robots.${tenantId}.${robotId}.events`);
  });

  it('reads back the tenant and robot of every subject it makes, lower-cased', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.uuid(), fc.constantFrom('', 'run1', 'a_b-c'), fc.boolean(), (tenant, robot, prefix, upper) => {
        const subject = robotEventSubject(prefix, upper ? tenant.toUpperCase() : tenant, robot);
        expect(parseRobotEventSubject(subject, prefix)).toEqual({ tenantId: tenant.toLowerCase(), robotId: robot.toLowerCase() });
      }),
    );
  });

  it.each([
    ['another prefix', `other.robots.${tenantId}.${robotId}.events`],
    ['a tenant that is not a UUID', `run1.robots.acme.${robotId}.events`],
    ['a robot that is not a UUID', `run1.robots.${tenantId}.arm-1.events`],
    ['another last token', `run1.robots.${tenantId}.${robotId}.commands`],
    ['an extra token', `run1.robots.${tenantId}.${robotId}.events.x`],
    ['a missing robot', `run1.robots.${tenantId}.events`],
  ])('refuses %s', (_what, subject) => {
    expect(parseRobotEventSubject(subject, 'run1')).toBeUndefined();
  });

  it('finds every token header whatever its case, and none without headers', () => {
    const h = headers();
    h.set('portcullis-robot-token', 'a');
    expect(robotTokensOf(h)).toEqual(['a']);
    h.append('Portcullis-Robot-Token', 'b');
    expect(robotTokensOf(h)).toHaveLength(2);
    expect(robotTokensOf(undefined)).toEqual([]);
    expect(robotTokensOf(headers())).toEqual([]);
  });
});
