import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { challengeFor, createDomainOwnership, type ResolveTxt } from './domain-ownership.js';

const host = 'chat.acme.example';
const token = 'c2VjcmV0LXRva2VuLW9mLWFjbWUtY29ycA';
const recordName = `_portcullis-challenge.${host}`;
const recordValue = `portcullis-domain-verification=${token}`;

/** An error as node's resolver throws it: an Error carrying a DNS code. */
const dnsError = (code: string) => Object.assign(new Error(`queryTxt ${code} ${recordName}`), { code });

/** A fake DNS: TXT records by name; names it holds nothing for answer `missing` (ENOTFOUND by default). */
function fakeDns(records: Record<string, string[][]>, { missing = 'ENOTFOUND' }: { missing?: string } = {}) {
  const queried: string[] = [];
  const resolveTxt: ResolveTxt = async (name) => {
    queried.push(name);
    const found = records[name];
    if (!found) throw dnsError(missing);
    return found;
  };
  return { resolveTxt, queried };
}

/** The error a promise rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('challengeFor', () => {
  it('names the record under the host and carries the token in its value', () => {
    expect(challengeFor(host, token)).toEqual({ recordName, recordValue });
  });
});

describe('proving domain ownership', () => {
  it('accepts a TXT record carrying the token, asking for the challenge name under the host', async () => {
    const dns = fakeDns({ [recordName]: [[recordValue]] });
    await expect(createDomainOwnership({ resolveTxt: dns.resolveTxt, exemptSuffixes: [] }).prove(host, token)).resolves.toBeUndefined();
    expect(dns.queried).toEqual([recordName]);
  });

  it('accepts the value split into character strings, among other records of the name', async () => {
    const dns = fakeDns({
      [recordName]: [
        ['v=spf1 -all'],
        ['portcullis-domain-verification=someone-elses-token'],
        [recordValue.slice(0, 20), recordValue.slice(20)],
      ],
    });
    await expect(createDomainOwnership({ resolveTxt: dns.resolveTxt, exemptSuffixes: [] }).prove(host, token)).resolves.toBeUndefined();
  });

  it('does not take the token from separate records, nor a value that only contains it', async () => {
    for (const records of [[[recordValue.slice(0, 20)], [recordValue.slice(20)]], [[`${recordValue} `]], [[`x${recordValue}`]]]) {
      const dns = fakeDns({ [recordName]: records });
      const error = await rejectionOf(createDomainOwnership({ resolveTxt: dns.resolveTxt, exemptSuffixes: [] }).prove(host, token));
      expect(error.code).toBe('FAILED_PRECONDITION');
    }
  });

  it('refuses a record carrying another token, naming the record to publish', async () => {
    const dns = fakeDns({ [recordName]: [['portcullis-domain-verification=wrong-token']] });
    const error = await rejectionOf(createDomainOwnership({ resolveTxt: dns.resolveTxt, exemptSuffixes: [] }).prove(host, token));
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(error.details).toEqual({ recordName, recordValue });
    expect(error.message).toContain(recordName);
    expect(error.message).toContain(recordValue);
  });

  it('does not accept the record published under the host itself or another host', async () => {
    const dns = fakeDns({ [host]: [[recordValue]], [`_portcullis-challenge.other.example`]: [[recordValue]] });
    const error = await rejectionOf(createDomainOwnership({ resolveTxt: dns.resolveTxt, exemptSuffixes: [] }).prove(host, token));
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(dns.queried).toEqual([recordName]);
  });

  it('refuses a name with no TXT records', async () => {
    const dns = fakeDns({ [recordName]: [] });
    const error = await rejectionOf(createDomainOwnership({ resolveTxt: dns.resolveTxt, exemptSuffixes: [] }).prove(host, token));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', details: { recordName, recordValue } });
  });

  it.each(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME'])('treats %s as no record: FAILED_PRECONDITION naming it', async (code) => {
    const dns = fakeDns({}, { missing: code });
    const error = await rejectionOf(createDomainOwnership({ resolveTxt: dns.resolveTxt, exemptSuffixes: [] }).prove(host, token));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', details: { recordName, recordValue } });
  });

  it.each(['ETIMEOUT', 'ESERVFAIL', 'ECONNREFUSED', 'EREFUSED'])(
    'answers DEPENDENCY_UNAVAILABLE when DNS fails with %s, keeping the cause',
    async (code) => {
      const dns = fakeDns({}, { missing: code });
      const error = await rejectionOf(createDomainOwnership({ resolveTxt: dns.resolveTxt, exemptSuffixes: [] }).prove(host, token));
      expect(error.code).toBe('DEPENDENCY_UNAVAILABLE');
      expect(error.cause).toMatchObject({ code });
    },
  );

  it('answers DEPENDENCY_UNAVAILABLE for a resolver failure without a code', async () => {
    const resolveTxt: ResolveTxt = () => Promise.reject(new Error('socket closed'));
    const error = await rejectionOf(createDomainOwnership({ resolveTxt, exemptSuffixes: [] }).prove(host, token));
    expect(error.code).toBe('DEPENDENCY_UNAVAILABLE');
  });
});

describe('exempt hosts', () => {
  it('exempts hosts under a suffix given with or without its leading dot, in any case', () => {
    for (const exemptSuffixes of [['.localhost'], ['localhost'], ['  .LocalHost '], ['LOCALHOST']]) {
      const ownership = createDomainOwnership({ resolveTxt: fakeDns({}).resolveTxt, exemptSuffixes });
      expect({ exemptSuffixes, exempt: ownership.isExempt('app.localhost') }).toEqual({ exemptSuffixes, exempt: true });
      expect({ exemptSuffixes, exempt: ownership.isExempt('a.b.localhost') }).toEqual({ exemptSuffixes, exempt: true });
    }
  });

  it('exempts only whole labels: evil-localhost and localhost.example are not under .localhost', () => {
    const ownership = createDomainOwnership({ resolveTxt: fakeDns({}).resolveTxt, exemptSuffixes: ['localhost'] });
    expect(ownership.isExempt('evil-localhost')).toBe(false);
    expect(ownership.isExempt('app.evil-localhost')).toBe(false);
    expect(ownership.isExempt('evillocalhost')).toBe(false);
    expect(ownership.isExempt('localhost.example')).toBe(false);
    expect(ownership.isExempt('chat.acme.example')).toBe(false);
  });

  it('checks every suffix given', () => {
    const ownership = createDomainOwnership({ resolveTxt: fakeDns({}).resolveTxt, exemptSuffixes: ['.localhost', '.test'] });
    expect(ownership.isExempt('app.test')).toBe(true);
    expect(ownership.isExempt('app.localhost')).toBe(true);
    expect(ownership.isExempt('app.example')).toBe(false);
  });

  it('exempts nothing with no suffixes, or only empty ones', () => {
    for (const exemptSuffixes of [[], [''], ['.'], ['  ']]) {
      const ownership = createDomainOwnership({ resolveTxt: fakeDns({}).resolveTxt, exemptSuffixes });
      for (const candidate of ['app.localhost', 'chat.acme.example', 'localhost']) {
        expect({ exemptSuffixes, candidate, exempt: ownership.isExempt(candidate) }).toEqual({ exemptSuffixes, candidate, exempt: false });
      }
    }
  });
});

describe('verification tokens', () => {
  it('are 32 base64url characters, different each time', () => {
    const ownership = createDomainOwnership({ resolveTxt: fakeDns({}).resolveTxt, exemptSuffixes: [] });
    const tokens = Array.from({ length: 50 }, () => ownership.newToken());
    for (const generated of tokens) expect(generated).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(new Set(tokens).size).toBe(tokens.length);
  });
});
