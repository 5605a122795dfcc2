import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { createFileSmsSender } from './sms-senders.js';

describe('file SMS sender', () => {
  it('appends one JSON line per message, creating the directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sms-outbox-'));
    try {
      const file = join(dir, 'nested', 'outbox.jsonl');
      const sender = createFileSmsSender({ file, now: () => new Date('2026-01-02T03:04:05.000Z') });
      await sender.send('+8613800138000', '123456');
      await sender.send('+14155552671', '654321');
      const lines = (await readFile(file, 'utf8'))
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as unknown);
      expect(lines).toEqual([
        { phone: '+8613800138000', code: '123456', at: '2026-01-02T03:04:05.000Z' },
        { phone: '+14155552671', code: '654321', at: '2026-01-02T03:04:05.000Z' },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
