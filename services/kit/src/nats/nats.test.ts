import { describe, expect, it } from '@jest/globals';
import { tenantOfSubject } from './nats.js';

const tenant = '0b8f3c1e-5d2a-4c7b-9e61-3f2a1d0c9b87';
const robot = '7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6';

describe('tenantOfSubject', () => {
  it.each([
    `audit.${tenant}.authz.decision`,
    `audit.${tenant}._batch`,
    `t1abc.audit.${tenant}.tool.call`,
    `robots.${tenant}.${robot}.events`,
    `run-7.robots.${tenant}.${robot}.events`,
    `devices.${tenant.toUpperCase()}.${robot}.heartbeat`,
  ])('reads the tenant of %s', (subject) => {
    expect(tenantOfSubject(subject)).toBe(tenant);
  });

  it.each(['tenant.changed', 'policy.changed', `x.y.audit.${tenant}.kind`, `audit.not-a-uuid.kind`, `payments.${tenant}.kind`, `audit`])(
    'finds no tenant in %s',
    (subject) => {
      expect(tenantOfSubject(subject)).toBeUndefined();
    },
  );
});
