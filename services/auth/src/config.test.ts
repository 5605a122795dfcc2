import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { generateServiceIdentityEnv, loadConfig } from '@portcullis/kit';
import { configSchema } from './config.js';

const required = { DATABASE_URL: 'postgres://portcullis_auth@127.0.0.1:5432/portcullis_auth', ...generateServiceIdentityEnv('auth') };

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
      PHONE_CODE_TTL_SECONDS: 300,
      PHONE_CODE_RESEND_SECONDS: 60,
      PHONE_CODE_MAX_ATTEMPTS: 5,
      SMS_PROVIDER: 'file',
      SMS_OUTBOX_FILE: '.portcullis/sms-outbox.jsonl',
      ALIYUN_SMS_ENDPOINT: 'https://dysmsapi.aliyuncs.com',
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

  const withSecret = { ...required, AUTH_SIGNING_KEY_SECRET: randomBytes(32).toString('base64') };
  const aliyun = {
    SMS_PROVIDER: 'aliyun',
    ALIYUN_SMS_ACCESS_KEY_ID: 'LTAI-test-id',
    ALIYUN_SMS_ACCESS_KEY_SECRET: 'very-secret-value',
    ALIYUN_SMS_SIGN_NAME: 'Portcullis',
    ALIYUN_SMS_TEMPLATE_CODE: 'SMS_000001',
  };

  it('accepts the aliyun provider with all of its settings', () => {
    expect(loadConfig(configSchema, { ...withSecret, ...aliyun })).toMatchObject({
      SMS_PROVIDER: 'aliyun',
      ALIYUN_SMS_SIGN_NAME: 'Portcullis',
    });
  });

  it.each(['ALIYUN_SMS_ACCESS_KEY_ID', 'ALIYUN_SMS_ACCESS_KEY_SECRET', 'ALIYUN_SMS_SIGN_NAME', 'ALIYUN_SMS_TEMPLATE_CODE'] as const)(
    'requires %s when SMS_PROVIDER is aliyun, without echoing the secret',
    (name) => {
      const env = Object.fromEntries(Object.entries({ ...withSecret, ...aliyun }).filter(([key]) => key !== name));
      let thrown: unknown;
      try {
        loadConfig(configSchema, env);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining(name) });
      expect((thrown as Error).message).not.toContain('very-secret-value');
    },
  );

  it('refuses an unknown SMS provider', () => {
    expect(() => loadConfig(configSchema, { ...withSecret, SMS_PROVIDER: 'carrier-pigeon' })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringContaining('SMS_PROVIDER') }),
    );
  });
});

describe('auth config: Google and GitHub sign-in', () => {
  const withSecret = { ...required, AUTH_SIGNING_KEY_SECRET: randomBytes(32).toString('base64') };
  const google = { GOOGLE_CLIENT_ID: 'google-client', GOOGLE_CLIENT_SECRET: 'google-very-secret' };
  const base = { OAUTH_REDIRECT_BASE_URL: 'https://console.example.com' };
  const refusal = (env: Record<string, string>) => {
    try {
      loadConfig(configSchema, { ...withSecret, ...env });
    } catch (error) {
      return error as Error;
    }
    throw new Error('expected the configuration to be refused');
  };

  it('leaves both providers off by default, with the documented endpoints', () => {
    expect(loadConfig(configSchema, withSecret)).toMatchObject({
      OAUTH_STATE_TTL_SECONDS: 600,
      OAUTH_ALLOW_INSECURE_LOOPBACK: false,
      GOOGLE_ISSUER: 'https://accounts.google.com',
      GITHUB_AUTHORIZE_URL: 'https://github.com/login/oauth/authorize',
      GITHUB_TOKEN_URL: 'https://github.com/login/oauth/access_token',
      GITHUB_API_URL: 'https://api.github.com',
    });
    const config = loadConfig(configSchema, withSecret);
    expect(config.GOOGLE_CLIENT_ID).toBeUndefined();
    expect(config.OAUTH_REDIRECT_BASE_URL).toBeUndefined();
  });

  it('accepts a provider with its id, secret and the public base URL', () => {
    expect(loadConfig(configSchema, { ...withSecret, ...google, ...base })).toMatchObject({ ...google, ...base });
  });

  it('needs the client id and secret together, without echoing the secret', () => {
    const error = refusal({ GOOGLE_CLIENT_SECRET: 'google-very-secret', ...base });
    expect(error.message).toContain('GOOGLE_CLIENT_ID');
    expect(error.message).not.toContain('google-very-secret');
    expect(refusal({ GITHUB_CLIENT_ID: 'gh', ...base }).message).toContain('GITHUB_CLIENT_SECRET');
  });

  it('needs the public base URL once a provider is configured', () => {
    expect(refusal(google).message).toContain('OAUTH_REDIRECT_BASE_URL');
  });

  it('allows a plain-http base URL only on loopback, and never with a query', () => {
    expect(refusal({ ...google, OAUTH_REDIRECT_BASE_URL: 'http://console.example.com' }).message).toContain('OAUTH_REDIRECT_BASE_URL');
    expect(refusal({ ...google, OAUTH_REDIRECT_BASE_URL: 'https://console.example.com/?next=x' }).message).toContain('query');
    expect(loadConfig(configSchema, { ...withSecret, ...google, OAUTH_REDIRECT_BASE_URL: 'http://localhost:8080' })).toMatchObject({
      OAUTH_REDIRECT_BASE_URL: 'http://localhost:8080',
    });
  });

  it('allows plain-http provider endpoints only on loopback and only when insecure loopback is on', () => {
    const local = { GOOGLE_ISSUER: 'http://127.0.0.1:4000', GITHUB_API_URL: 'http://[::1]:4001' };
    expect(refusal(local).message).toMatch(/GOOGLE_ISSUER[\s\S]*GITHUB_API_URL/);
    expect(loadConfig(configSchema, { ...withSecret, ...local, OAUTH_ALLOW_INSECURE_LOOPBACK: 'true' })).toMatchObject({
      ...local,
      OAUTH_ALLOW_INSECURE_LOOPBACK: true,
    });
    expect(refusal({ GITHUB_TOKEN_URL: 'http://github.example/token', OAUTH_ALLOW_INSECURE_LOOPBACK: 'true' }).message).toContain(
      'GITHUB_TOKEN_URL',
    );
  });
});
