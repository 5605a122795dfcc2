import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { generateServiceIdentityEnv, loadConfig } from '@portcullis/kit';
import { configSchema } from './config.js';
import { defaultRateLimits } from './libraries/rate-limit-config.js';

const required = { CSRF_SECRET: randomBytes(32).toString('base64'), ...generateServiceIdentityEnv('api-gateway') };
const load = (env: Record<string, string>) => loadConfig(configSchema, { ...required, ...env });

describe('api-gateway config', () => {
  it('applies the documented defaults', () => {
    expect(load({})).toMatchObject({
      HTTP_PORT: 8080,
      MAX_JSON_DEPTH: 32,
      CORS_ALLOWED_ORIGINS: [],
      RATE_LIMITS: defaultRateLimits,
      DECISION_CACHE_TTL_MS: 2000,
      TOKEN_CACHE_MAX_AGE_MS: 300_000,
      AUDIT_MAX_PENDING: 10_000,
      AUDIT_BATCH_LINGER_MS: 10,
      COOKIE_SECURE: true,
    });
    expect(load({}).TLS_CERT_FILE).toBeUndefined();
  });

  it('requires a CSRF secret of 32 random bytes', () => {
    const withoutSecret: Record<string, string> = { ...required };
    delete withoutSecret['CSRF_SECRET'];
    expect(() => loadConfig(configSchema, withoutSecret)).toThrow(/CSRF_SECRET/);
    expect(() => load({ CSRF_SECRET: randomBytes(16).toString('base64') })).toThrow(/CSRF_SECRET/);
  });

  it('takes exact browser origins only', () => {
    expect(load({ CORS_ALLOWED_ORIGINS: 'https://console.example.com, http://localhost:5173' }).CORS_ALLOWED_ORIGINS).toEqual([
      'https://console.example.com',
      'http://localhost:5173',
    ]);
    for (const bad of ['https://console.example.com/', 'console.example.com', 'https://a.example/path', '*', 'ftp://a.example']) {
      expect(() => load({ CORS_ALLOWED_ORIGINS: bad })).toThrow(/CORS_ALLOWED_ORIGINS/);
    }
  });

  it('wants the TLS certificate and key together', () => {
    expect(load({ TLS_CERT_FILE: '/etc/tls/cert.pem', TLS_KEY_FILE: '/etc/tls/key.pem' })).toMatchObject({
      TLS_CERT_FILE: '/etc/tls/cert.pem',
      TLS_KEY_FILE: '/etc/tls/key.pem',
    });
    expect(() => load({ TLS_CERT_FILE: '/etc/tls/cert.pem' })).toThrow(/TLS_CERT_FILE and TLS_KEY_FILE together/);
    expect(() => load({ TLS_KEY_FILE: '/etc/tls/key.pem' })).toThrow(/TLS_CERT_FILE and TLS_KEY_FILE together/);
  });

  it('refuses rate limits it cannot apply, naming the setting', () => {
    expect(() => load({ RATE_LIMITS: '{"defaultPlan":"gold"}' })).toThrow(/RATE_LIMITS/);
    expect(
      load({
        RATE_LIMITS: '{"sensitive":' + JSON.stringify({ ...defaultRateLimits.sensitive, sms: { points: 2, windowSeconds: 60 } }) + '}',
      }).RATE_LIMITS.sensitive.sms,
    ).toEqual({
      points: 2,
      windowSeconds: 60,
    });
  });
});
