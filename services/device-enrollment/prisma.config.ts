import { defineConfig } from 'prisma/config';

// Used only by `prisma generate`; migrations are plain SQL applied by the kit's runner.
export default defineConfig({ schema: 'prisma/schema.prisma', migrations: { path: 'prisma/migrations' } });
