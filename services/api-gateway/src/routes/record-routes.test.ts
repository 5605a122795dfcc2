import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AppError, type AuditEventInit } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import type { ProtectedRoute } from '../http/route.js';
import type { AuthorizedContext } from '../pipeline/index.js';
import { createRecordRoutes, MAX_COMMENT_CHARS, MAX_MESSAGES, recordEventId, transcriptSha256 } from './record-routes.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const otherTenant = '00000000-0000-4000-8000-00000000000b';
const assistantId = '00000000-0000-4000-8000-0000000000c1';
const conversationId = '00000000-0000-4000-8000-0000000000d1';
const recordId = '00000000-0000-4000-8000-0000000000e1';
const userId = '00000000-0000-4000-8000-0000000000f1';
const principal = { kind: PrincipalKind.API_KEY, id: 'abcdefghij012345', tenantId };
const context = {
  request: { requestId: 'req-1' },
  target: { tenantId, tenantName: 'Alpha', assistantId },
  principal,
  capability: { object: 'conversations', action: 'record' },
} as unknown as AuthorizedContext;
const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function setup({ fails = false } = {}) {
  const published: AuditEventInit[] = [];
  const routes = createRecordRoutes({
    audit: {
      publish(event) {
        if (fails) return Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', 'no JetStream ack'));
        published.push(event);
        return Promise.resolve(event.eventId ?? '');
      },
    },
  });
  const route = (suffix: string): ProtectedRoute => {
    const found = routes.find((r) => r.path === `/api/conversations/:conversationId/${suffix}`);
    if (!found) throw new Error(`no route ${suffix}`);
    return found;
  };
  const send = (suffix: 'records' | 'feedback', body: unknown, id = conversationId) =>
    route(suffix).handle(context, { body, params: { conversationId: id }, query: {} });
  return { routes, published, send };
}

const conversation = {
  recordId,
  turn: 3,
  userId,
  messages: [
    { role: 'user', content: 'What is the weather in Zürich?' },
    { role: 'assistant', content: 'Sunny, 21 °C.' },
  ],
  metadata: { model: 'm-1', channel: 'web' },
};

describe('conversation and feedback records', () => {
  it('are POST routes behind conversations:record on one assistant', () => {
    const { routes } = setup();
    expect(routes.map((r) => [r.method, r.path, `${r.capability.object}:${r.capability.action}`, r.needsAssistant])).toEqual([
      ['post', '/api/conversations/:conversationId/records', 'conversations:record', true],
      ['post', '/api/conversations/:conversationId/feedback', 'conversations:record', true],
    ]);
  });

  it('records each message as its SHA-256 and UTF-8 size, never its content, with tenant, principal, assistant and request', async () => {
    const { send, published } = setup();
    const answer = await send('records', conversation);
    const digests = [sha('What is the weather in Zürich?'), sha('Sunny, 21 °C.')];
    const transcript = transcriptSha256([
      { role: 'user', sha256: digests[0] ?? '' },
      { role: 'assistant', sha256: digests[1] ?? '' },
    ]);
    const eventId = recordEventId(tenantId, 'conversation.record', recordId);
    expect(answer).toEqual({
      status: 201,
      body: {
        eventId,
        conversationId,
        transcriptSha256: transcript,
        messages: [
          { role: 'user', sha256: digests[0], bytes: 31 },
          { role: 'assistant', sha256: digests[1], bytes: 14 },
        ],
      },
    });
    expect(published).toEqual([
      {
        eventId,
        tenantId,
        kind: 'conversation.record',
        principal,
        assistantId,
        object: 'conversations',
        action: 'record',
        outcome: Outcome.SUCCESS,
        requestId: 'req-1',
        attributes: {
          record_id: recordId,
          conversation_id: conversationId,
          turn: '3',
          user_id: userId,
          message_count: '2',
          total_bytes: '45',
          transcript_sha256: transcript,
          'message.00.role': 'user',
          'message.00.sha256': digests[0],
          'message.00.bytes': '31',
          'message.01.role': 'assistant',
          'message.01.sha256': digests[1],
          'message.01.bytes': '14',
          'meta.model': 'm-1',
          'meta.channel': 'web',
        },
      },
    ]);
    expect(JSON.stringify(published)).not.toContain('Zürich');
  });

  it('records feedback with its rating and comment', async () => {
    const { send, published } = setup();
    const rated = sha('Sunny, 21 °C.');
    const answer = await send('feedback', { recordId, rating: 'down', comment: 'It was raining.\nTwice.', turn: 3, messageSha256: rated });
    const eventId = recordEventId(tenantId, 'feedback.record', recordId);
    expect(answer).toEqual({ status: 201, body: { eventId, conversationId } });
    expect(published[0]).toEqual({
      eventId,
      tenantId,
      kind: 'feedback.record',
      principal,
      assistantId,
      object: 'conversations',
      action: 'record',
      outcome: Outcome.SUCCESS,
      requestId: 'req-1',
      attributes: {
        record_id: recordId,
        conversation_id: conversationId,
        rating: 'down',
        comment: 'It was raining.\nTwice.',
        turn: '3',
        message_sha256: rated,
      },
    });
  });

  it('gives a record an event id of its own tenant, kind and recordId, so a retried record is stored once', () => {
    const id = recordEventId(tenantId, 'conversation.record', recordId);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(recordEventId(tenantId, 'conversation.record', recordId.toUpperCase())).toBe(id);
    expect(recordEventId(otherTenant, 'conversation.record', recordId)).not.toBe(id);
    expect(recordEventId(tenantId, 'feedback.record', recordId)).not.toBe(id);
  });

  it.each([
    ['a conversation id that is not a UUID', 'records', conversation, 'not-a-uuid', 'conversationId'],
    ['no recordId', 'records', { ...conversation, recordId: undefined }, conversationId, 'recordId'],
    ['no message', 'records', { ...conversation, messages: [] }, conversationId, 'messages'],
    [
      'too many messages',
      'records',
      { ...conversation, messages: Array.from({ length: MAX_MESSAGES + 1 }, () => ({ role: 'user', content: 'hi' })) },
      conversationId,
      'messages',
    ],
    ['an unknown role', 'records', { ...conversation, messages: [{ role: 'root', content: 'x' }] }, conversationId, 'messages.0.role'],
    [
      'a message field it does not know',
      'records',
      { ...conversation, messages: [{ role: 'user', content: 'x', raw: 1 }] },
      conversationId,
      'messages.0',
    ],
    ['a field it does not know', 'records', { ...conversation, transcript: 'x' }, conversationId, ''],
    ['a bad metadata key', 'records', { ...conversation, metadata: { 'Bad Key': 'x' } }, conversationId, 'metadata.Bad Key'],
    ['a control character in metadata', 'records', { ...conversation, metadata: { model: 'a\u0000b' } }, conversationId, 'metadata'],
    ['a user id that is not a UUID', 'records', { ...conversation, userId: 'ada' }, conversationId, 'userId'],
    ['a negative turn', 'records', { ...conversation, turn: -1 }, conversationId, 'turn'],
    ['a rating it does not know', 'feedback', { recordId, rating: 5 }, conversationId, 'rating'],
    [
      'a comment that is too long',
      'feedback',
      { recordId, rating: 'up', comment: 'x'.repeat(MAX_COMMENT_CHARS + 1) },
      conversationId,
      'comment',
    ],
    ['a control character in the comment', 'feedback', { recordId, rating: 'up', comment: 'a\u0007b' }, conversationId, 'comment'],
    ['a message hash that is not one', 'feedback', { recordId, rating: 'up', messageSha256: 'abc' }, conversationId, 'messageSha256'],
  ] as const)('refuses %s with INVALID_ARGUMENT and records nothing', async (_label, suffix, body, id, field) => {
    const { send, published } = setup();
    const rejection = await send(suffix, body, id).catch((error: unknown) => error);
    expect(rejection).toMatchObject({ code: 'INVALID_ARGUMENT' });
    if (field !== '') expect(rejection).toMatchObject({ details: { field } });
    expect(published).toEqual([]);
  });

  it('answers DEPENDENCY_UNAVAILABLE when JetStream did not store the record, so the assistant sends it again', async () => {
    const { send } = setup({ fails: true });
    await expect(send('feedback', { recordId, rating: 'up' })).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
      message: expect.stringContaining('same recordId'),
    });
  });
});
