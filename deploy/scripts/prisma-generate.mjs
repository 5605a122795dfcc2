// Runs `prisma generate` for the service in the current directory without any download.
// Prisma's CLI fetches a native schema engine on start unless PRISMA_SCHEMA_ENGINE_BINARY
// names an existing executable; generation itself needs only the bundled WASM, so any
// executable will do. Migrations are applied by the kit's SQL runner, never by the CLI.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('prisma/schema.prisma')) {
  console.error(`no prisma/schema.prisma in ${process.cwd()}`);
  process.exit(1);
}
const result = spawnSync('node_modules/.bin/prisma', ['generate'], {
  stdio: 'inherit',
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
    CHECKPOINT_DISABLE: '1',
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
  },
});
process.exit(result.status ?? 1);
