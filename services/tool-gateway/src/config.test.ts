import { describe, expect, it } from '@jest/globals';
import { generateServiceIdentityEnv, loadConfig } from '@portcullis/kit';
import { configSchema } from './config.js';

const required = {
  DATABASE_URL: 'postgres://portcullis_tool_gateway@127.0.0.1:5432/portcullis_tool_gateway',
  ...generateServiceIdentityEnv('tool-gateway'),
};

describe('tool-gateway config', () => {
  it('applies the documented defaults: no private target is allowed', () => {
    expect(loadConfig(configSchema, required)).toMatchObject({
      LISTEN_HOST: '127.0.0.1',
      GRPC_PORT: 50054,
      ADMIN_PORT: 9054,
      TOOL_TIMEOUT_MS: 5000,
      TOOL_MAX_RESPONSE_BYTES: 1_048_576,
      TOOL_ALLOWED_PRIVATE_TARGETS: [],
    });
  });

  it('ignores the retired all-or-nothing switch', () => {
    const config = loadConfig(configSchema, { ...required, TOOL_ALLOW_PRIVATE_TARGETS: 'true' });
    expect(config.TOOL_ALLOWED_PRIVATE_TARGETS).toEqual([]);
  });

  it('parses the allow-list into normalised host and port pairs', () => {
    const config = loadConfig(configSchema, { ...required, TOOL_ALLOWED_PRIVATE_TARGETS: '127.0.0.1:7070, Localhost:8080,[::1]:9000' });
    expect(config.TOOL_ALLOWED_PRIVATE_TARGETS).toEqual([
      { host: '127.0.0.1', port: 7070 },
      { host: 'localhost', port: 8080 },
      { host: '::1', port: 9000 },
    ]);
  });

  it.each(['127.0.0.1', '127.0.0.1:7070,10.0.0.1', '::1:8080', '127.0.0.1:0'])('refuses the list %j, naming the variable', (value) => {
    expect(() => loadConfig(configSchema, { ...required, TOOL_ALLOWED_PRIVATE_TARGETS: value })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringContaining('TOOL_ALLOWED_PRIVATE_TARGETS') }),
    );
  });
});
