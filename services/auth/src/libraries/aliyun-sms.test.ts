import { describe, expect, it } from '@jest/globals';
import { aliyunPhoneNumber, createAliyunSmsSender, percentEncode, signRpcRequest, stringToSign, type FetchLike } from './aliyun-sms.js';

// The worked example of Alibaba Cloud's RPC signature documentation (signature version 1.0):
// DescribeRegions with AccessKeyId "testid" and AccessKeySecret "testsecret".
const documentedParams = {
  TimeStamp: '2016-02-23T12:46:24Z',
  Format: 'XML',
  AccessKeyId: 'testid',
  Action: 'DescribeRegions',
  SignatureMethod: 'HMAC-SHA1',
  SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf',
  Version: '2014-05-26',
  SignatureVersion: '1.0',
};

const config = {
  accessKeyId: 'LTAI-test-id',
  accessKeySecret: 'test-secret-value',
  signName: '阿里云短信测试',
  templateCode: 'SMS_154950909',
  endpoint: 'https://dysmsapi.example.test',
  now: () => new Date('2026-03-04T05:06:07.890Z'),
  nonce: () => '45e25e9b-0a6f-4070-8c85-2956eda1b466',
};

function recordingFetch(answer: { status: number; body: string }) {
  const calls: { url: string; method: string; headers: Record<string, string>; body: string }[] = [];
  const fetchFn: FetchLike = (url, init) => {
    calls.push({ url, ...init });
    return Promise.resolve({ ok: answer.status < 300, status: answer.status, text: () => Promise.resolve(answer.body) });
  };
  return { calls, fetchFn };
}

describe('Aliyun RPC signature', () => {
  it('reproduces the documented example', () => {
    expect(stringToSign('GET', documentedParams)).toBe(
      'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1' +
        '%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0' +
        '%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26',
    );
    expect(signRpcRequest('GET', documentedParams, 'testsecret')).toBe('CT9X0VtwR86fNWSnsc6v8YGOjuE=');
  });

  it('percent-encodes as RFC 3986 requires', () => {
    expect(percentEncode("a b*c~d'!()/+=&")).toBe('a%20b%2Ac~d%27%21%28%29%2F%2B%3D%26');
    expect(percentEncode('短信')).toBe('%E7%9F%AD%E4%BF%A1');
  });

  it('writes mainland numbers without the country code, others without "+"', () => {
    expect(aliyunPhoneNumber('+8613800138000')).toBe('13800138000');
    expect(aliyunPhoneNumber('+85291234567')).toBe('85291234567');
  });
});

describe('Aliyun SMS sender', () => {
  it('POSTs a signed SendSms form to the endpoint', async () => {
    const { calls, fetchFn } = recordingFetch({ status: 200, body: '{"Code":"OK","Message":"OK","RequestId":"r","BizId":"b"}' });
    await createAliyunSmsSender({ ...config, fetch: fetchFn }).send('+8613800138000', '042133');
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call).toMatchObject({
      url: 'https://dysmsapi.example.test/',
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const form = Object.fromEntries(new URLSearchParams(call?.body));
    const { Signature, ...signed } = form;
    expect(signed).toEqual({
      AccessKeyId: 'LTAI-test-id',
      Action: 'SendSms',
      Format: 'JSON',
      PhoneNumbers: '13800138000',
      RegionId: 'cn-hangzhou',
      SignName: '阿里云短信测试',
      SignatureMethod: 'HMAC-SHA1',
      SignatureNonce: '45e25e9b-0a6f-4070-8c85-2956eda1b466',
      SignatureVersion: '1.0',
      TemplateCode: 'SMS_154950909',
      TemplateParam: '{"code":"042133"}',
      Timestamp: '2026-03-04T05:06:07Z',
      Version: '2017-05-25',
    });
    expect(Signature).toBe(signRpcRequest('POST', signed, 'test-secret-value'));
    expect(call?.body).not.toContain('test-secret-value');
  });

  it.each([
    ['a refusal', { status: 200, body: '{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"limit"}' }, 'isv.BUSINESS_LIMIT_CONTROL'],
    ['an HTTP error', { status: 400, body: '{"Code":"SignatureDoesNotMatch","Message":"bad"}' }, 'SignatureDoesNotMatch'],
    ['a non-JSON answer', { status: 502, body: '<html>bad gateway</html>' }, 'unknown'],
  ])('turns %s into UPSTREAM_FAILED without any secret', async (_label, answer, providerCode) => {
    const { fetchFn } = recordingFetch(answer);
    const error = await createAliyunSmsSender({ ...config, fetch: fetchFn })
      .send('+8613800138000', '042133')
      .catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'UPSTREAM_FAILED', details: { providerCode } });
    const text = JSON.stringify(error) + (error as Error).message;
    for (const secret of ['test-secret-value', '042133']) expect(text).not.toContain(secret);
  });

  it('turns a network failure into UPSTREAM_FAILED', async () => {
    const sender = createAliyunSmsSender({ ...config, fetch: () => Promise.reject(new Error('ECONNREFUSED')) });
    await expect(sender.send('+8613800138000', '042133')).rejects.toMatchObject({ code: 'UPSTREAM_FAILED' });
  });
});
