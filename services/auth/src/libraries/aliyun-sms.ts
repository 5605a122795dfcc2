import { createHmac, randomUUID } from 'node:crypto';
import { AppError } from '@portcullis/kit';
import type { SmsSender } from './sms-senders.js';

/**
 * RFC 3986 percent-encoding as Alibaba Cloud's RPC signature (version 1.0) defines it: only
 * A–Z a–z 0–9 - _ . ~ stay as they are, everything else is UTF-8 %XX (space is %20, * is %2A).
 */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/gu, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The sorted, percent-encoded `k=v&…` string of every parameter except Signature. */
export function canonicalQuery(params: Record<string, string>): string {
  return Object.keys(params)
    .filter((key) => key !== 'Signature')
    .sort()
    .map((key) => `${percentEncode(key)}=${percentEncode(params[key] ?? '')}`)
    .join('&');
}

/** StringToSign = METHOD & percentEncode("/") & percentEncode(canonical query). */
export function stringToSign(method: 'GET' | 'POST', params: Record<string, string>): string {
  return `${method}&${percentEncode('/')}&${percentEncode(canonicalQuery(params))}`;
}

/** Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)): signature method HMAC-SHA1, version 1.0. */
export function signRpcRequest(method: 'GET' | 'POST', params: Record<string, string>, accessKeySecret: string): string {
  return createHmac('sha1', `${accessKeySecret}&`).update(stringToSign(method, params), 'utf8').digest('base64');
}

/**
 * Dysmsapi wants mainland China numbers without the country code and every other number as
 * country code + number, never with "+".
 */
export function aliyunPhoneNumber(e164: string): string {
  return e164.startsWith('+86') ? e164.slice(3) : e164.slice(1);
}

/** The part of fetch the sender uses; tests inject their own. */
export type FetchLike = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string },
) => Promise<{
  ok: boolean;
  status: number;
  text(): Promise<string>;
}>;

export interface AliyunSmsConfig {
  accessKeyId: string;
  accessKeySecret: string;
  signName: string;
  templateCode: string;
  /** Base URL, e.g. https://dysmsapi.aliyuncs.com */
  endpoint: string;
  fetch?: FetchLike;
  now?: () => Date;
  nonce?: () => string;
}

const API_VERSION = '2017-05-25';

/** `2016-02-23T12:46:24Z`: ISO 8601 in UTC, without milliseconds. */
function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/u, 'Z');
}

/** The signed form parameters of one SendSms call (the template gets the code as `${code}`). */
export function sendSmsParams(config: AliyunSmsConfig & { now: () => Date; nonce: () => string }, phone: string, code: string) {
  const params: Record<string, string> = {
    AccessKeyId: config.accessKeyId,
    Action: 'SendSms',
    Format: 'JSON',
    PhoneNumbers: aliyunPhoneNumber(phone),
    RegionId: 'cn-hangzhou',
    SignName: config.signName,
    SignatureMethod: 'HMAC-SHA1',
    SignatureNonce: config.nonce(),
    SignatureVersion: '1.0',
    TemplateCode: config.templateCode,
    TemplateParam: JSON.stringify({ code }),
    Timestamp: timestamp(config.now()),
    Version: API_VERSION,
  };
  return { ...params, Signature: signRpcRequest('POST', params, config.accessKeySecret) };
}

const upstreamFailed = (message: string, details?: Record<string, unknown>, cause?: unknown) =>
  new AppError('UPSTREAM_FAILED', message, { ...(details ? { details } : {}), ...(cause === undefined ? {} : { cause }) });

/**
 * Alibaba Cloud SMS (Dysmsapi SendSms, RPC style). The parameters go in a POST form body —
 * so the code never appears in a URL — signed with HMAC-SHA1 over the canonical query.
 * Anything but `{"Code":"OK"}` is UPSTREAM_FAILED carrying Aliyun's error code only, never
 * the key, the signature or the code.
 */
export function createAliyunSmsSender(config: AliyunSmsConfig): SmsSender {
  const fetchFn: FetchLike = config.fetch ?? ((url, init) => fetch(url, init));
  const resolved = { ...config, now: config.now ?? (() => new Date()), nonce: config.nonce ?? randomUUID };
  const url = new URL('/', config.endpoint).toString();
  return {
    async send(phone, code) {
      const body = new URLSearchParams(sendSmsParams(resolved, phone, code)).toString();
      let response: Awaited<ReturnType<FetchLike>>;
      try {
        response = await fetchFn(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      } catch (error) {
        throw upstreamFailed('the SMS provider could not be reached', undefined, error);
      }
      const text = await response.text().catch(() => '');
      let providerCode: unknown;
      try {
        providerCode = (JSON.parse(text) as { Code?: unknown }).Code;
      } catch {
        providerCode = undefined;
      }
      if (response.ok && providerCode === 'OK') return;
      throw upstreamFailed('the SMS provider refused the message', {
        status: response.status,
        providerCode: typeof providerCode === 'string' ? providerCode.slice(0, 100) : 'unknown',
      });
    },
  };
}
