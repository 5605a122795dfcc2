import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '@portcullis/kit';
import { configSchema } from './config.js';

const required = { DATABASE_URL: 'postgres://portcullis_auth@127.0.0.1:5432/portcullis_auth' };

describe('auth config', () => {
  it('applies the documented defaults and decodes the signing secret', () => {
    const secret = randomBytes(32);
    const config = loadConfig(configSchema, { ...required, AUTH_SIGNING_KEY_SECRET: secret.toString('base64') });
    expect(config).toMatchObject({
      LISTEN_HOST: '127.0.0.1',
      GRPC_PORT: 50051,
      ADMIN_PORT: 9051,
      JWKS_PORT: 8081,
      TENANT_REGISTRY_ADDRESS: '127.0.0.1:50052',
      REDIS_KEY_PREFIX: 'portcullis:',
      AUTH_ISSUER: 'portcullis-auth',
      AUTH_AUDIENCE: 'portcullis',
      ACCESS_TOKEN_TTL_SECONDS: 900,
      LOGIN_TICKET_TTL_SECONDS: 300,
      REFRESH_TOKEN_TTL_SECONDS: 2_592_000,
      SIGNING_KEY_PROPAGATION_SECONDS: 60,
      LOGIN_FAILURE_WINDOW_SECONDS: 900,
      LOGIN_MAX_FAILURES_PER_ACCOUNT: 5,
      LOGIN_MAX_FAILURES_PER_IP: 50,
    });
    expect(config.AUTH_SIGNING_KEY_SECRET.equals(secret)).toBe(true);
  });

  it.each([
    ['missing', undefined],
    ['too short', randomBytes(16).toString('base64')],
    ['too long', randomBytes(33).toString('base64')],
    ['not base64', '!'.repeat(44)],
  ])('refuses a signing secret that is %s, without echoing it', (_label, value) => {
    const env = value === undefined ? required : { ...required, AUTH_SIGNING_KEY_SECRET: value };
    let thrown: unknown;
    try {
      loadConfig(configSchema, env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining('AUTH_SIGNING_KEY_SECRET') });
    if (value !== undefined) expect((thrown as Error).message).not.toContain(value);
  });
});
