import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Delivers a verification code by SMS. Rejects (an AppError when it knows why) when it could not. */
export interface SmsSender {
  send(phone: string, code: string): Promise<void>;
}

export interface FileSmsSenderDeps {
  /** SMS_OUTBOX_FILE: where the messages are appended, one JSON object per line. */
  file: string;
  now?: () => Date;
}

/**
 * Development provider: nothing leaves the machine. Each message is appended to a JSON-lines
 * outbox file as `{"phone","code","at"}` — reading codes from this file is its whole purpose;
 * the service log never carries them.
 */
export function createFileSmsSender({ file, now = () => new Date() }: FileSmsSenderDeps): SmsSender {
  return {
    async send(phone, code) {
      await mkdir(dirname(file), { recursive: true });
      await appendFile(file, `${JSON.stringify({ phone, code, at: now().toISOString() })}\n`, { mode: 0o600 });
    },
  };
}
