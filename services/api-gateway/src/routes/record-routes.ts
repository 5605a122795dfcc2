import { createHash } from 'node:crypto';
import { AppError, z, type AuditEventInit, type AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { parseInput, type ProtectedRoute } from '../http/route.js';
import type { AuthorizedContext } from '../pipeline/index.js';

export interface RecordRouteDeps {
  /**
   * The durable audit publisher: a record is answered 201 only once JetStream acknowledged it, so
   * an assistant that gets 503 sends it again (the same `recordId` is stored once).
   */
  audit: Pick<AuditPublisher, 'publish'>;
}

/** Messages in one conversation record, at most (a longer conversation is sent as several records, `turn` by `turn`). */
export const MAX_MESSAGES = 50;
/** Characters of one message's content, at most (the request body limit applies too). */
export const MAX_CONTENT_CHARS = 32_768;
/** Characters of a feedback comment, at most. */
export const MAX_COMMENT_CHARS = 1_000;
const MAX_METADATA_ENTRIES = 16;
const MAX_METADATA_VALUE_CHARS = 200;

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Control characters: never stored in the audit trail (a comment may still hold tabs and line breaks). */
const CONTROL = /\p{Cc}/u;
const COMMENT_CONTROL = /[^\P{Cc}\t\n\r]/u;

const conversationParams = z.object({ conversationId: z.uuid() });
const recordId = z.uuid();
const turn = z.int().min(0).max(1_000_000);
const metadata = z
  .record(
    z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'keys are lowercase names of at most 32 characters'),
    z.string().max(MAX_METADATA_VALUE_CHARS),
  )
  .refine((entries) => Object.keys(entries).length <= MAX_METADATA_ENTRIES, `at most ${MAX_METADATA_ENTRIES} entries`)
  .refine((entries) => Object.values(entries).every((value) => !CONTROL.test(value)), 'values must not contain control characters');

const conversationRecord = z.strictObject({
  recordId,
  turn: turn.optional(),
  /** The member the assistant talked with, when it knows one. */
  userId: z.uuid().optional(),
  messages: z
    .array(
      z.strictObject({
        role: z.enum(['user', 'assistant', 'system', 'tool']),
        content: z.string().max(MAX_CONTENT_CHARS),
      }),
    )
    .min(1)
    .max(MAX_MESSAGES),
  metadata: metadata.optional(),
});

const feedbackRecord = z.strictObject({
  recordId,
  rating: z.enum(['up', 'down']),
  comment: z
    .string()
    .max(MAX_COMMENT_CHARS)
    .refine((text) => !COMMENT_CONTROL.test(text), 'must not contain control characters other than tabs and line breaks')
    .optional(),
  turn: turn.optional(),
  userId: z.uuid().optional(),
  /** The SHA-256 of the message rated, as its conversation record answered it. */
  messageSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256')
    .optional(),
});

/**
 * The event id of a record: derived from the tenant, the kind and the assistant's `recordId`, so
 * a retried record is stored once (JetStream and the audit service both keep an id once) and no
 * record of one tenant can ever take the id of another tenant's.
 */
export function recordEventId(tenantId: string, kind: string, id: string): string {
  const digest = createHash('sha256').update(`portcullis-record\n${tenantId}\n${kind}\n${id.toLowerCase()}`).digest();
  // RFC 9562 version 8 (custom) with the RFC variant.
  digest[6] = ((digest[6] ?? 0) & 0x0f) | 0x80;
  digest[8] = ((digest[8] ?? 0) & 0x3f) | 0x80;
  const hex = digest.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The SHA-256 of a transcript: of the JSON array of each message's [role, sha256], in order. */
export function transcriptSha256(messages: readonly { role: string; sha256: string }[]): string {
  return sha256Hex(JSON.stringify(messages.map((message) => [message.role, message.sha256])));
}

const indexOf = (index: number) => String(index).padStart(2, '0');

/**
 * Records an assistant submits about its conversations, kept in the tenant's audit trail
 * (`conversation.record`, `feedback.record`) with the tenant, the principal that sent them, the
 * assistant, the request and trace ids and the time. A conversation record keeps the SHA-256 and
 * UTF-8 size of each message, never its content: the trail cannot be erased, the assistant keeps
 * the transcript, and anyone holding it can show it is the one recorded. A feedback record keeps
 * the rating and the person's comment (at most 1,000 characters).
 */
export function createRecordRoutes({ audit }: RecordRouteDeps): ProtectedRoute[] {
  const capability = { object: 'conversations', action: 'record' };

  async function store(context: AuthorizedContext, kind: string, id: string, attributes: Record<string, string>): Promise<string> {
    const { request, target, principal } = context;
    const event: AuditEventInit = {
      eventId: recordEventId(target.tenantId, kind, id),
      tenantId: target.tenantId,
      kind,
      principal,
      assistantId: target.assistantId,
      object: capability.object,
      action: capability.action,
      outcome: Outcome.SUCCESS,
      requestId: request.requestId,
      attributes: { record_id: id.toLowerCase(), ...attributes },
    };
    try {
      return await audit.publish(event);
    } catch (error) {
      throw new AppError('DEPENDENCY_UNAVAILABLE', 'the audit trail did not store the record; send it again with the same recordId', {
        cause: error,
      });
    }
  }

  const optional = (name: string, value: string | number | undefined) => (value === undefined ? {} : { [name]: String(value) });

  return [
    {
      kind: 'protected',
      method: 'post',
      path: '/api/conversations/:conversationId/records',
      capability,
      needsAssistant: true,
      summary:
        "Record (part of) one of the assistant's conversations in the audit trail: each message's SHA-256 and size, never its content",
      async handle(context, { body, params }) {
        const { conversationId } = parseInput(conversationParams, params);
        const input = parseInput(conversationRecord, body);
        const messages = input.messages.map(({ role, content }) => ({
          role,
          sha256: sha256Hex(content),
          bytes: Buffer.byteLength(content, 'utf8'),
        }));
        const transcript = transcriptSha256(messages);
        const attributes: Record<string, string> = {
          conversation_id: conversationId.toLowerCase(),
          ...optional('turn', input.turn),
          ...optional('user_id', input.userId?.toLowerCase()),
          message_count: String(messages.length),
          total_bytes: String(messages.reduce((sum, message) => sum + message.bytes, 0)),
          transcript_sha256: transcript,
        };
        messages.forEach((message, index) => {
          attributes[`message.${indexOf(index)}.role`] = message.role;
          attributes[`message.${indexOf(index)}.sha256`] = message.sha256;
          attributes[`message.${indexOf(index)}.bytes`] = String(message.bytes);
        });
        for (const [key, value] of Object.entries(input.metadata ?? {})) attributes[`meta.${key}`] = value;
        const eventId = await store(context, 'conversation.record', input.recordId, attributes);
        return { status: 201, body: { eventId, conversationId, transcriptSha256: transcript, messages } };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/conversations/:conversationId/feedback',
      capability,
      needsAssistant: true,
      summary: "Record a person's feedback on one of the assistant's conversations in the audit trail: a rating and a short comment",
      async handle(context, { body, params }) {
        const { conversationId } = parseInput(conversationParams, params);
        const input = parseInput(feedbackRecord, body);
        const eventId = await store(context, 'feedback.record', input.recordId, {
          conversation_id: conversationId.toLowerCase(),
          rating: input.rating,
          ...optional('comment', input.comment),
          ...optional('turn', input.turn),
          ...optional('user_id', input.userId?.toLowerCase()),
          ...optional('message_sha256', input.messageSha256),
        });
        return { status: 201, body: { eventId, conversationId } };
      },
    },
  ];
}
