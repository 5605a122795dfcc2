import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { generateServiceIdentityEnv, loadConfig } from '@portcullis/kit';
import { configSchema } from './config.js';

const required = {
  DATABASE_URL: 'postgres://portcullis_device_enrollment@127.0.0.1:5432/portcullis_device_enrollment',
  ...generateServiceIdentityEnv('device-enrollment'),
};

describe('device-enrollment config', () => {
  it('applies the documented defaults and decodes the activation code secret', () => {
    const secret = randomBytes(32);
    const config = loadConfig(configSchema, { ...required, ACTIVATION_CODE_SECRET: secret.toString('base64') });
    expect(config).toMatchObject({
      LISTEN_HOST: '127.0.0.1',
      GRPC_PORT: 50055,
      ADMIN_PORT: 9055,
      ACTIVATION_CODE_TTL_SECONDS: 600,
      ACTIVATION_MAX_FAILED_BINDS: 5,
      ACTIVATION_FAILED_BIND_WINDOW_SECONDS: 900,
    });
    expect(config.ACTIVATION_CODE_SECRET.equals(secret)).toBe(true);
  });

  it.each([
    ['missing', undefined],
    ['too short', randomBytes(16).toString('base64')],
    ['too long', randomBytes(33).toString('base64')],
    ['not base64', '!'.repeat(44)],
    ['not canonical base64', randomBytes(32).toString('base64url')],
  ])('refuses an activation code secret that is %s, without echoing it', (_label, value) => {
    const env = value === undefined ? required : { ...required, ACTIVATION_CODE_SECRET: value };
    let thrown: unknown;
    try {
      loadConfig(configSchema, env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining('ACTIVATION_CODE_SECRET') });
    if (value !== undefined) expect((thrown as Error).message).not.toContain(value);
  });

  it.each([
    ['ACTIVATION_MAX_FAILED_BINDS', '0'],
    ['ACTIVATION_MAX_FAILED_BINDS', 'many'],
    ['ACTIVATION_FAILED_BIND_WINDOW_SECONDS', '0'],
    ['ACTIVATION_FAILED_BIND_WINDOW_SECONDS', '86401'],
  ])('refuses %s=%s', (name, value) => {
    const env = { ...required, ACTIVATION_CODE_SECRET: randomBytes(32).toString('base64'), [name]: value };
    expect(() => loadConfig(configSchema, env)).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringContaining(name) }),
    );
  });
});
