import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createAliyunSmsSender, signRpcRequest } from '../src/libraries/aliyun-sms.js';

interface Received {
  method: string | undefined;
  url: string | undefined;
  contentType: string | undefined;
  form: Record<string, string>;
}

const secret = 'local-test-secret';

/** A stand-in for dysmsapi.aliyuncs.com that checks the signature the way Aliyun does. */
function fakeDysmsapi() {
  const received: Received[] = [];
  let answer = { status: 200, body: { Code: 'OK', Message: 'OK', RequestId: 'req-1', BizId: 'biz-1' } as Record<string, string> };
  const readBody = async (request: IncomingMessage) => {
    let text = '';
    for await (const chunk of request) text += String(chunk);
    return text;
  };
  const server: Server = createServer((request, response) => {
    void readBody(request).then((text) => {
      const form = Object.fromEntries(new URLSearchParams(text));
      received.push({ method: request.method, url: request.url, contentType: request.headers['content-type'], form });
      const { Signature, ...signed } = form;
      const valid = Signature === signRpcRequest('POST', signed, secret);
      const reply = valid
        ? answer
        : { status: 400, body: { Code: 'SignatureDoesNotMatch', Message: 'Specified signature is not matched' } };
      response.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    });
  });
  return {
    server,
    received,
    answerWith(status: number, body: Record<string, string>) {
      answer = { status, body };
    },
  };
}

describe('Aliyun SMS sender against a local HTTP server', () => {
  const fake = fakeDysmsapi();
  let endpoint: string;

  beforeAll(async () => {
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  });

  const sender = (accessKeySecret = secret) =>
    createAliyunSmsSender({ accessKeyId: 'LTAI-local', accessKeySecret, signName: 'Portcullis', templateCode: 'SMS_1', endpoint });

  it('sends a signed SendSms form with the real fetch', async () => {
    await sender().send('+8613800138000', '314159');
    const request = fake.received.at(-1);
    expect(request).toMatchObject({ method: 'POST', url: '/', contentType: 'application/x-www-form-urlencoded' });
    expect(request?.form).toMatchObject({
      Action: 'SendSms',
      Version: '2017-05-25',
      PhoneNumbers: '13800138000',
      SignName: 'Portcullis',
      TemplateCode: 'SMS_1',
      TemplateParam: '{"code":"314159"}',
      AccessKeyId: 'LTAI-local',
      SignatureMethod: 'HMAC-SHA1',
      SignatureVersion: '1.0',
      Timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    });
    expect(JSON.stringify(request)).not.toContain(secret);
  });

  it('uses a new nonce for every request', async () => {
    await sender().send('+8613800138000', '111111');
    await sender().send('+8613800138000', '222222');
    const nonces = fake.received.slice(-2).map((r) => r.form.SignatureNonce);
    expect(new Set(nonces).size).toBe(2);
  });

  it('reports a wrong signature as UPSTREAM_FAILED without the secret', async () => {
    const error = await sender('a-different-secret')
      .send('+8613800138000', '271828')
      .catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'UPSTREAM_FAILED', details: { status: 400, providerCode: 'SignatureDoesNotMatch' } });
    expect(JSON.stringify(error) + (error as Error).message).not.toMatch(/a-different-secret|271828/);
  });

  it('reports a refusal with HTTP 200 as UPSTREAM_FAILED', async () => {
    fake.answerWith(200, { Code: 'isv.MOBILE_NUMBER_ILLEGAL', Message: 'illegal number' });
    await expect(sender().send('+8613800138000', '161803')).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
      details: { providerCode: 'isv.MOBILE_NUMBER_ILLEGAL' },
    });
  });
});
