import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { recordingAudit } from '../test-support/audit-events.js';
import { fakeClock, type Clock } from '../test-support/memory-stores.js';
import type { CallbackRedemption, OAuthProviderClient, ProviderIdentity } from './oauth-providers.js';
import {
  createOAuthSignIn,
  oauthStateKey,
  type OAuthAccountStore,
  type OAuthAccountTx,
  type OAuthStateStore,
  type RevokedCredentials,
} from './oauth-sign-in.js';
import { createStateSigner, deriveStateKey, type OAuthProviderName } from './oauth-state.js';
import { rejectionOf } from '../test-support/rejections.js';

const binding = (label: string) => createHash('sha256').update(label).digest('base64url');
const browserA = binding('browser-a');
const browserB = binding('browser-b');

function memoryStates(clock: Clock) {
  const entries = new Map<string, { value: string; expiresAt: number }>();
  const store: OAuthStateStore = {
    async set(key, value, _mode, seconds) {
      entries.set(key, { value, expiresAt: clock.now() + seconds * 1000 });
      return 'OK';
    },
    async getdel(key) {
      const entry = entries.get(key);
      entries.delete(key);
      return entry && entry.expiresAt > clock.now() ? entry.value : null;
    },
  };
  return { store, entries };
}

interface UserRow {
  id: string;
  email: string;
  displayName: string;
  passwordHash: string | null;
  emailVerified: boolean;
  phone: string | null;
  phoneVerified: boolean;
}

/**
 * An API key or robot in some tenant. `holder` is the user it belongs to: the user of a user
 * key, the creator (or last rotator) of a tenant key, the creator of a robot.
 */
interface CredentialRow {
  kind: 'apiKey' | 'robot';
  id: string;
  tenantId: string;
  holder: string;
  revoked: boolean;
}

/**
 * Users, identities and credentials with all-or-nothing transactions (work runs on copies,
 * committed on success). Credentials are shared with other (concurrent) writers: a transaction
 * records which rows it revoked and marks them on commit, so a row another writer adds while it
 * runs is neither seen nor lost.
 */
function memoryAccounts() {
  let users = new Map<string, UserRow>();
  let identities = new Map<string, { userId: string; email: string }>();
  const credentials = new Map<string, CredentialRow>();
  const failures: { revokeCredentials?: Error | undefined } = {};
  const calls = { revokeCredentials: 0 };
  /** The live, unrevoked credentials of `userId`, except those in `skip`. */
  const liveOf = (userId: string, skip: ReadonlySet<string> = new Set()) =>
    [...credentials.values()].filter((row) => row.holder === userId && !row.revoked && !skip.has(row.id));
  const revokedOf = (rows: CredentialRow[]): RevokedCredentials => ({
    apiKeys: rows.filter((row) => row.kind === 'apiKey').map(({ id, tenantId }) => ({ id, tenantId })),
    robots: rows.filter((row) => row.kind === 'robot').map(({ id, tenantId }) => ({ id, tenantId })),
  });
  const store: OAuthAccountStore = {
    async transaction(work) {
      const draftUsers = new Map([...users].map(([id, row]) => [id, { ...row }]));
      const draftIdentities = new Map(identities);
      const draftRevoked = new Set<string>();
      const tx: OAuthAccountTx = {
        async findIdentity(provider, subject) {
          return draftIdentities.get(`${provider}:${subject}`)?.userId;
        },
        async lockUserByEmail(email) {
          const row = [...draftUsers.values()].find((user) => user.email === email);
          return row && { id: row.id, emailVerified: row.emailVerified };
        },
        async createUser({ email, displayName }) {
          const id = `user-${draftUsers.size + 1}`;
          draftUsers.set(id, { id, email, displayName, passwordHash: null, emailVerified: true, phone: null, phoneVerified: false });
          return id;
        },
        async reclaimUser(userId) {
          const row = draftUsers.get(userId);
          if (!row) throw new Error('no such user');
          row.passwordHash = null;
          row.emailVerified = true;
          row.phone = null;
          row.phoneVerified = false;
          const rows = liveOf(userId, draftRevoked);
          for (const credential of rows) draftRevoked.add(credential.id);
          return revokedOf(rows);
        },
        async insertIdentity({ provider, subject, userId, email }) {
          if (draftIdentities.has(`${provider}:${subject}`)) throw new Error('duplicate identity');
          draftIdentities.set(`${provider}:${subject}`, { userId, email });
        },
      };
      const result = await work(tx);
      users = draftUsers;
      identities = draftIdentities;
      for (const id of draftRevoked) {
        const row = credentials.get(id);
        if (row) row.revoked = true;
      }
      return result;
    },
    async revokeCredentials(userId) {
      calls.revokeCredentials += 1;
      if (failures.revokeCredentials) throw failures.revokeCredentials;
      const rows = liveOf(userId);
      for (const row of rows) row.revoked = true;
      return revokedOf(rows);
    },
  };
  return {
    store,
    failures,
    calls,
    users: () => users,
    identities: () => identities,
    credentials,
    addUser(row: Omit<UserRow, 'phone' | 'phoneVerified'> & Partial<Pick<UserRow, 'phone' | 'phoneVerified'>>) {
      users.set(row.id, { phone: null, phoneVerified: false, ...row });
    },
    /** A committed credential (as another transaction would add it). */
    addCredential(row: Omit<CredentialRow, 'revoked'>) {
      credentials.set(row.id, { ...row, revoked: false });
    },
    /** Ids of the revoked credentials, sorted. */
    revokedIds: () =>
      [...credentials.values()]
        .filter((row) => row.revoked)
        .map((row) => row.id)
        .sort(),
  };
}

function fakeProvider(name: OAuthProviderName, usesNonce: boolean) {
  const redemptions: CallbackRedemption[] = [];
  const behaviour: { identity: ProviderIdentity; failure?: AppError | undefined } = {
    identity: { subject: 'subject-1', email: 'Ada@Example.com', emailVerified: true, displayName: ' Ada Lovelace ' },
  };
  const provider: OAuthProviderClient = {
    name,
    usesNonce,
    redirectUri: `https://console.example/api/auth/oauth/${name}/callback`,
    async authorizationUrl({ state, codeChallenge, nonce }) {
      const url = new URL(`https://${name}.example/authorize`);
      url.searchParams.set('state', state);
      url.searchParams.set('code_challenge', codeChallenge);
      if (nonce !== undefined) url.searchParams.set('nonce', nonce);
      return url;
    },
    async redeem(redemption) {
      redemptions.push(redemption);
      if (behaviour.failure) throw behaviour.failure;
      return { ...behaviour.identity };
    },
  };
  return { provider, redemptions, behaviour };
}

function setup({ providers = ['google', 'github'] as OAuthProviderName[] } = {}) {
  const clock = fakeClock();
  const states = memoryStates(clock);
  const accounts = memoryAccounts();
  const google = fakeProvider('google', true);
  const github = fakeProvider('github', false);
  const revoked: { sessions: string[]; tickets: string[] } = { sessions: [], tickets: [] };
  /** Why each revokeAll of sessions was asked for. */
  const sessionReasons: (string | undefined)[] = [];
  const recorded = recordingAudit();
  const failures: { revokeSessions?: Error | undefined } = {};
  /** Runs while sessions are being ended (inside the reclaim's transaction, the first time). */
  const hooks: { duringRevokeSessions?: (() => void) | undefined } = {};
  const logLines: string[] = [];
  const logger = createLogger({ name: 'oauth-test', level: 'debug', destination: { write: (line: string) => logLines.push(line) } });
  const oauth = createOAuthSignIn({
    providers: {
      ...(providers.includes('google') ? { google: google.provider } : {}),
      ...(providers.includes('github') ? { github: github.provider } : {}),
    },
    signer: createStateSigner({ key: deriveStateKey(randomBytes(32)), now: clock.now }),
    states: states.store,
    keyPrefix: 'p:',
    stateTtlSeconds: 600,
    accounts: accounts.store,
    sessions: {
      async revokeAll(userId, reason) {
        if (failures.revokeSessions) throw failures.revokeSessions;
        hooks.duringRevokeSessions?.();
        revoked.sessions.push(userId);
        sessionReasons.push(reason);
        return 2;
      },
    },
    tickets: {
      async revokeAll(userId) {
        revoked.tickets.push(userId);
        return 1;
      },
    },
    signIn: {
      async ticketFor(userId) {
        return { ticket: `ticket-of-${userId}`, userId, ticketExpiresInSeconds: 300, tenants: [] };
      },
    },
    audit: recorded.audit,
    logger,
    now: clock.now,
  });

  /** Starts a sign-in in `browser` and returns the callback query the provider would send back. */
  const begin = async (provider: OAuthProviderName = 'google', browser = browserA) => {
    const started = await oauth.start(provider, browser);
    const url = new URL(started.authorizationUrl);
    const state = url.searchParams.get('state') ?? '';
    return { started, url, state, query: new URLSearchParams({ code: `code-${randomBytes(4).toString('hex')}`, state }).toString() };
  };
  const complete = (callbackQuery: string, provider: OAuthProviderName = 'google', browser = browserA) =>
    oauth.complete({ provider, binding: browser, callbackQuery, clientIp: '203.0.113.9' });

  return { clock, states, accounts, google, github, revoked, sessionReasons, recorded, failures, hooks, logLines, oauth, begin, complete };
}

describe('oauth sign-in: start', () => {
  it('keeps the verifier, nonce and binding in a single-use record and signs a state bound to the browser', async () => {
    const { begin, states } = setup();
    const { started, url, state } = await begin('google');
    expect(started.expiresInSeconds).toBe(600);
    const [key, entry] = [...states.entries][0] ?? [];
    expect(states.entries.size).toBe(1);
    expect(key).toMatch(/^p:oauth:[A-Za-z0-9_-]{43}$/);
    const record = JSON.parse(entry?.value ?? '{}') as Record<string, string>;
    expect(record).toEqual({
      provider: 'google',
      codeVerifier: expect.any(String),
      nonce: url.searchParams.get('nonce'),
      binding: browserA,
    });
    const challenge = createHash('sha256')
      .update(record.codeVerifier ?? '')
      .digest('base64url');
    expect(url.searchParams.get('code_challenge')).toBe(challenge);
    expect(state).not.toContain(record.codeVerifier);
  });

  it('sends no nonce to GitHub', async () => {
    const { begin, states } = setup();
    const { url } = await begin('github');
    expect(url.searchParams.has('nonce')).toBe(false);
    expect(JSON.parse([...states.entries.values()][0]?.value ?? '{}')).not.toHaveProperty('nonce');
  });

  it('refuses an unconfigured provider and a malformed binding, storing nothing', async () => {
    const { oauth, states } = setup({ providers: ['github'] });
    await expect(oauth.start('google', browserA)).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: 'google sign-in is not configured',
    });
    await expect(oauth.start('github', 'not-a-digest')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(states.entries.size).toBe(0);
  });
});

describe('oauth sign-in: callback checks', () => {
  it('redeems with the stored verifier, state and nonce, and spends only that record', async () => {
    const { begin, complete, google, states } = setup();
    const first = await begin('google');
    const stored = JSON.parse([...states.entries.values()][0]?.value ?? '{}') as Record<string, string>;
    await begin('google');
    await complete(new URLSearchParams({ code: 'the-code', state: first.state }).toString());
    expect(google.redemptions).toHaveLength(1);
    expect(google.redemptions[0]).toMatchObject({ codeVerifier: stored.codeVerifier, state: first.state, nonce: stored.nonce });
    expect(google.redemptions[0]?.callbackQuery.get('code')).toBe('the-code');
    // The second sign-in's record is untouched.
    expect(states.entries.size).toBe(1);
  });

  it('refuses a replayed callback without asking the provider again', async () => {
    const { begin, complete, google } = setup();
    const { query } = await begin();
    await complete(query);
    const error = await rejectionOf(complete(query));
    expect(error).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('already completed') });
    expect(google.redemptions).toHaveLength(1);
  });

  it('refuses the callback in another browser, and leaves the sign-in usable in the right one', async () => {
    const { begin, complete, google } = setup();
    const { query } = await begin('google', browserA);
    expect(await rejectionOf(complete(query, 'google', browserB))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(google.redemptions).toHaveLength(0);
    await expect(complete(query, 'google', browserA)).resolves.toMatchObject({ accountCreated: true });
  });

  it('refuses a tampered or forged state', async () => {
    const { begin, complete, google } = setup();
    const { state } = await begin();
    const [payload = '', signature = ''] = state.split('.');
    const tampered = `${payload.slice(0, -2)}${payload.endsWith('A') ? 'B' : 'A'}${payload.slice(-1)}.${signature}`;
    const forged = createStateSigner({ key: deriveStateKey(randomBytes(32)) }).sign(
      { provider: 'google', stateId: randomBytes(32).toString('base64url'), expiresAt: 9_999_999_999 },
      browserA,
    );
    for (const bad of [tampered, forged, 'garbage']) {
      expect(await rejectionOf(complete(new URLSearchParams({ code: 'c', state: bad }).toString()))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    }
    expect(google.redemptions).toHaveLength(0);
  });

  it('refuses a Google state at the GitHub callback', async () => {
    const { begin, complete } = setup();
    const { query } = await begin('google');
    expect(await rejectionOf(complete(query, 'github'))).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses an expired sign-in', async () => {
    const { begin, complete, clock } = setup();
    const { query } = await begin();
    clock.advance(600_000);
    expect(await rejectionOf(complete(query))).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('expired') });
  });

  it('refuses a record that names another browser, even under a valid state', async () => {
    const { begin, complete, states, google } = setup();
    const { query } = await begin();
    for (const entry of states.entries.values()) {
      entry.value = JSON.stringify({ ...(JSON.parse(entry.value) as object), binding: browserB });
    }
    expect(await rejectionOf(complete(query))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(google.redemptions).toHaveLength(0);
  });

  it('answers a provider error clearly and spends the sign-in', async () => {
    const { begin, complete, states } = setup();
    const { state } = await begin();
    const error = await rejectionOf(
      complete(new URLSearchParams({ error: 'access_denied', error_description: '<script>', state }).toString()),
    );
    expect(error).toMatchObject({ code: 'UNAUTHENTICATED', message: 'google sign-in was not completed (access_denied); start it again' });
    expect(states.entries.size).toBe(0);
  });

  it('refuses a callback without code, with repeated parameters, or oversized', async () => {
    const { begin, complete } = setup();
    const { state, query } = await begin();
    await expect(complete(new URLSearchParams({ state }).toString())).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(complete(`${query}&state=${encodeURIComponent(state)}`)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(complete(`${query}&pad=${'x'.repeat(5000)}`)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('passes provider failures through and spends the sign-in', async () => {
    const { begin, complete, google } = setup();
    const { query } = await begin();
    google.behaviour.failure = new AppError('UNAUTHENTICATED', 'google sign-in could not be verified (nonce)');
    expect(await rejectionOf(complete(query))).toMatchObject({ code: 'UNAUTHENTICATED' });
    google.behaviour.failure = undefined;
    expect(await rejectionOf(complete(query))).toMatchObject({ message: expect.stringContaining('already completed') });
  });

  it('logs no code, state, verifier, nonce or ticket', async () => {
    const { begin, complete, logLines, states } = setup();
    const { query, state } = await begin();
    const record = [...states.entries.values()][0]?.value ?? '';
    const { codeVerifier, nonce } = JSON.parse(record) as { codeVerifier: string; nonce: string };
    const result = await complete(query);
    const log = logLines.join('\n');
    expect(log).toContain('oauth sign-in succeeded');
    for (const secret of [new URLSearchParams(query).get('code') ?? '', state, codeVerifier, nonce, result.ticket]) {
      expect(log).not.toContain(secret);
    }
  });
});

describe('oauth sign-in: account resolution', () => {
  it('creates an account for a new verified email: lowercased, verified, no password', async () => {
    const { begin, complete, accounts } = setup();
    const result = await complete((await begin()).query);
    expect(result).toMatchObject({ accountCreated: true, outcome: 'created', ticket: `ticket-of-${result.userId}` });
    expect(accounts.users().get(result.userId)).toEqual({
      id: result.userId,
      email: 'ada@example.com',
      displayName: 'Ada Lovelace',
      passwordHash: null,
      emailVerified: true,
      phone: null,
      phoneVerified: false,
    });
    expect(accounts.identities().get('google:subject-1')).toEqual({ userId: result.userId, email: 'ada@example.com' });
  });

  it('signs a linked identity into its account again, whatever email the provider now gives', async () => {
    const { begin, complete, google, accounts } = setup();
    const first = await complete((await begin()).query);
    google.behaviour.identity = { ...google.behaviour.identity, email: 'renamed@example.com' };
    const second = await complete((await begin()).query);
    expect(second).toMatchObject({ userId: first.userId, accountCreated: false, outcome: 'existing' });
    expect(accounts.users().size).toBe(1);
  });

  /** The squatter's credentials in two tenants, and another member's in the first. */
  const squatterWithCredentials = (accounts: ReturnType<typeof memoryAccounts>) => {
    accounts.addUser({
      id: 'squatted',
      email: 'ada@example.com',
      displayName: 'X',
      passwordHash: '$argon2id$...',
      emailVerified: false,
      phone: '+8613900000000',
      phoneVerified: true,
    });
    accounts.addCredential({ kind: 'apiKey', id: 'userkeyoftenanta', tenantId: 'tenant-a', holder: 'squatted' });
    accounts.addCredential({ kind: 'apiKey', id: 'tenantkeycreated', tenantId: 'tenant-b', holder: 'squatted' });
    accounts.addCredential({ kind: 'robot', id: 'robot-of-squatter', tenantId: 'tenant-a', holder: 'squatted' });
    accounts.addCredential({ kind: 'apiKey', id: 'keyofanotheruser', tenantId: 'tenant-a', holder: 'someone-else' });
    accounts.addCredential({ kind: 'robot', id: 'robot-of-another', tenantId: 'tenant-a', holder: 'someone-else' });
  };

  it('links to an account whose email was verified, without ending or revoking anything', async () => {
    const { begin, complete, accounts, revoked } = setup();
    accounts.addUser({
      id: 'verified',
      email: 'ada@example.com',
      displayName: 'Ada',
      passwordHash: null,
      emailVerified: true,
      phone: '+8613900000001',
      phoneVerified: true,
    });
    accounts.addCredential({ kind: 'apiKey', id: 'keyofverifieduse', tenantId: 'tenant-a', holder: 'verified' });
    const result = await complete((await begin()).query);
    expect(result).toMatchObject({ userId: 'verified', outcome: 'linked', accountCreated: false });
    expect(revoked).toEqual({ sessions: [], tickets: [] });
    expect(accounts.identities().get('google:subject-1')?.userId).toBe('verified');
    expect(accounts.users().get('verified')).toMatchObject({ phone: '+8613900000001', phoneVerified: true });
    expect(accounts.revokedIds()).toEqual([]);
    expect(accounts.calls.revokeCredentials).toBe(0);
  });

  it('reclaims a password account nobody verified: email verified, password and phone removed, sessions and tickets ended', async () => {
    const { begin, complete, accounts, revoked } = setup();
    squatterWithCredentials(accounts);
    const result = await complete((await begin()).query);
    expect(result).toMatchObject({ userId: 'squatted', outcome: 'reclaimed', accountCreated: false });
    expect(accounts.users().get('squatted')).toMatchObject({
      passwordHash: null,
      emailVerified: true,
      phone: null,
      phoneVerified: false,
    });
    // Once inside the transaction and once after the commit.
    expect(revoked).toEqual({ sessions: ['squatted', 'squatted'], tickets: ['squatted', 'squatted'] });
  });

  it("revokes every API key and robot the reclaimed account holds or created, in every tenant, and nobody else's", async () => {
    const { begin, complete, accounts, logLines } = setup();
    squatterWithCredentials(accounts);
    await complete((await begin()).query);
    expect(accounts.revokedIds()).toEqual(['robot-of-squatter', 'tenantkeycreated', 'userkeyoftenanta']);
    expect(accounts.credentials.get('keyofanotheruser')?.revoked).toBe(false);
    expect(accounts.credentials.get('robot-of-another')?.revoked).toBe(false);
    // Ids and tenants in the log, counted.
    const line = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l['msg'] === 'reclaimed account: API keys and robots revoked');
    expect(line).toMatchObject({
      userId: 'squatted',
      apiKeysRevoked: 2,
      robotsRevoked: 1,
      apiKeys: expect.arrayContaining([
        { id: 'userkeyoftenanta', tenantId: 'tenant-a' },
        { id: 'tenantkeycreated', tenantId: 'tenant-b' },
      ]),
      robots: [{ id: 'robot-of-squatter', tenantId: 'tenant-a' }],
    });
    // The second pass after the commit found nothing more, and said nothing.
    expect(accounts.calls.revokeCredentials).toBe(1);
    expect(logLines.join('\n')).not.toContain('late API keys');
  });

  it('records each revoked API key and robot in its own tenant, and ends the sessions with the reason', async () => {
    const { begin, complete, accounts, recorded, sessionReasons } = setup();
    squatterWithCredentials(accounts);
    await complete((await begin()).query);
    const reason = 'account reclaimed by a sign-in with a google-verified email';
    const revokedBy = (tenantId: string, kind: string, object: string, attributes: Record<string, string>) => ({
      tenantId,
      kind,
      principal: { kind: PrincipalKind.USER, id: 'squatted', tenantId },
      object,
      action: 'revoke',
      outcome: Outcome.SUCCESS,
      reason,
      attributes,
    });
    expect(recorded.events).toHaveLength(3);
    expect(recorded.events).toEqual(
      expect.arrayContaining([
        revokedBy('tenant-a', 'apikey.revoked', 'apikeys', { key_id: 'userkeyoftenanta' }),
        revokedBy('tenant-b', 'apikey.revoked', 'apikeys', { key_id: 'tenantkeycreated' }),
        revokedBy('tenant-a', 'robots.revoked', 'robots', { robot_id: 'robot-of-squatter' }),
      ]),
    );
    expect(sessionReasons).toEqual([reason, reason]);
  });

  it('fails the sign-in when the revocations of a committed reclaim were not recorded', async () => {
    const { begin, complete, accounts, recorded } = setup();
    squatterWithCredentials(accounts);
    recorded.fail();
    await expect(complete((await begin()).query)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    // The reclaim stands: its credentials stay revoked.
    expect(accounts.revokedIds()).toEqual(['robot-of-squatter', 'tenantkeycreated', 'userkeyoftenanta']);
  });

  it('revokes after the commit a credential made while the reclaim ran', async () => {
    const { begin, complete, accounts, hooks, logLines } = setup();
    squatterWithCredentials(accounts);
    hooks.duringRevokeSessions = () => {
      hooks.duringRevokeSessions = undefined;
      // Another transaction commits a key the reclaim's revocation did not see.
      accounts.addCredential({ kind: 'apiKey', id: 'keymadeduringrec', tenantId: 'tenant-a', holder: 'squatted' });
    };
    await complete((await begin()).query);
    expect(accounts.credentials.get('keymadeduringrec')?.revoked).toBe(true);
    const late = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l['msg'] === 'reclaimed account: late API keys and robots revoked');
    expect(late).toMatchObject({ apiKeysRevoked: 1, robotsRevoked: 0, apiKeys: [{ id: 'keymadeduringrec', tenantId: 'tenant-a' }] });
  });

  it('keeps a committed reclaim when the second revocation pass fails, and says so in the log', async () => {
    const { begin, complete, accounts, logLines } = setup();
    squatterWithCredentials(accounts);
    accounts.failures.revokeCredentials = new Error('database is down');
    await expect(complete((await begin()).query)).resolves.toMatchObject({ outcome: 'reclaimed' });
    expect(accounts.revokedIds()).toEqual(['robot-of-squatter', 'tenantkeycreated', 'userkeyoftenanta']);
    expect(logLines.join('\n')).toContain('revoking the credentials of a reclaimed account again failed');
  });

  it('commits nothing when the sessions of a reclaimed account cannot be ended', async () => {
    const { begin, complete, accounts, failures, revoked } = setup();
    squatterWithCredentials(accounts);
    failures.revokeSessions = new Error('redis is down');
    await expect(complete((await begin()).query)).rejects.toThrow('redis is down');
    expect(accounts.users().get('squatted')).toMatchObject({
      passwordHash: '$argon2id$...',
      emailVerified: false,
      phone: '+8613900000000',
      phoneVerified: true,
    });
    expect(accounts.identities().size).toBe(0);
    expect(accounts.revokedIds()).toEqual([]);
    // A retry after the outage does the whole reclaim.
    failures.revokeSessions = undefined;
    await expect(complete((await begin()).query)).resolves.toMatchObject({ outcome: 'reclaimed' });
    expect(revoked.sessions).toEqual(['squatted', 'squatted']);
    expect(accounts.revokedIds()).toEqual(['robot-of-squatter', 'tenantkeycreated', 'userkeyoftenanta']);
  });

  it.each([
    ['an unverified email', { emailVerified: false }],
    ['no email', { email: undefined, emailVerified: true }],
    ['a malformed email', { email: 'not an email', emailVerified: true }],
  ])('refuses %s and creates or links nothing', async (_label, change) => {
    const { begin, complete, google, accounts } = setup();
    accounts.addUser({ id: 'existing', email: 'ada@example.com', displayName: 'Ada', passwordHash: 'h', emailVerified: false });
    google.behaviour.identity = { ...google.behaviour.identity, ...change };
    const error = await rejectionOf(complete((await begin()).query));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', message: expect.stringContaining('verified email') });
    expect(accounts.users().size).toBe(1);
    expect(accounts.users().get('existing')).toMatchObject({ passwordHash: 'h', emailVerified: false });
    expect(accounts.identities().size).toBe(0);
  });

  it('keeps the providers apart: the same subject at GitHub is another identity', async () => {
    const { begin, complete, accounts } = setup();
    const viaGoogle = await complete((await begin('google')).query, 'google');
    const viaGithub = await complete((await begin('github')).query, 'github');
    expect(viaGithub).toMatchObject({ userId: viaGoogle.userId, outcome: 'linked' });
    expect([...accounts.identities().keys()].sort()).toEqual(['github:subject-1', 'google:subject-1']);
  });

  it('cuts a long provider display name to the account limit', async () => {
    const { begin, complete, google, accounts } = setup();
    google.behaviour.identity = { ...google.behaviour.identity, displayName: 'n'.repeat(300) };
    const result = await complete((await begin()).query);
    expect(accounts.users().get(result.userId)?.displayName).toHaveLength(100);
  });
});

describe('oauth state key', () => {
  it('is namespaced under the Redis prefix', () => {
    expect(oauthStateKey('portcullis:', 'abc')).toBe('portcullis:oauth:abc');
  });
});
