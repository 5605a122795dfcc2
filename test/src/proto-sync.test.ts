import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';

const protoDir = new URL('../../proto/', import.meta.url).pathname;
const checkScript = join(protoDir, 'scripts/check-generated.mjs');
const copies: string[] = [];

function copyOfProto(): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-proto-copy-'));
  copies.push(dir);
  cpSync(protoDir, dir, { recursive: true, filter: (source) => !/\/(node_modules|dist)(\/|$)/.test(source) });
  symlinkSync(join(protoDir, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

function check(dir: string) {
  return spawnSync(process.execPath, [checkScript, '--proto-dir', dir], { encoding: 'utf8' });
}

afterEach(() => {
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('generated protobuf code is checked against proto/', () => {
  it('passes when gen/ matches the .proto files', () => {
    const result = check(copyOfProto());
    expect(result.stdout).toContain('proto/gen matches');
    expect(result.status).toBe(0);
  });

  it('fails when a .proto changed without regenerating', () => {
    const dir = copyOfProto();
    appendFileSync(join(dir, 'portcullis/common/v1/common.proto'), '\nmessage AddedWithoutRegenerating {\n  string field = 1;\n}\n');
    const result = check(dir);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('stale: gen/portcullis/common/v1/common_pb.ts');
  });
});
