// Fails when proto/gen is not what `buf generate` makes from the current .proto files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

// `--proto-dir <dir>` checks another copy of the proto folder (the tests use this).
const dirFlag = process.argv.indexOf('--proto-dir');
const ownDir = new URL('..', import.meta.url).pathname;
const protoDir = dirFlag === -1 ? ownDir : process.argv[dirFlag + 1];
const committed = join(protoDir, 'gen');
const fresh = mkdtempSync(join(tmpdir(), 'portcullis-proto-'));

function listFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

try {
  execFileSync(join(ownDir, 'node_modules/.bin/buf'), ['generate', '-o', fresh], {
    cwd: protoDir,
    stdio: 'inherit',
  });
  const want = new Map(listFiles(join(fresh, 'gen')).map((f) => [relative(join(fresh, 'gen'), f), f]));
  const have = new Map(listFiles(committed).map((f) => [relative(committed, f), f]));
  const problems = [];
  for (const [name, path] of want) {
    if (!have.has(name)) problems.push(`missing: gen/${name}`);
    else if (readFileSync(path, 'utf8') !== readFileSync(have.get(name), 'utf8')) problems.push(`stale: gen/${name}`);
  }
  for (const name of have.keys()) if (!want.has(name)) problems.push(`not generated from any .proto: gen/${name}`);
  if (problems.length > 0) {
    console.error(`proto/gen is out of date with proto/*.proto:\n  ${problems.join('\n  ')}\nRun: pnpm proto:generate`);
    process.exit(1);
  }
  console.log(`proto/gen matches the .proto files (${want.size} files)`);
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
