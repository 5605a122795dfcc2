import { context } from '@opentelemetry/api';
import { AppError } from '../errors.js';
import { withTenant } from '../telemetry/telemetry.js';
import { isUuid } from '../validate.js';

/** The part of a Prisma transaction client this helper needs. */
export interface RawQueryable {
  $queryRaw<T = unknown>(query: TemplateStringsArray, ...values: unknown[]): Promise<T>;
}

/** The part of a Prisma client this helper needs: interactive transactions. */
export interface TransactionRunner<Tx extends RawQueryable> {
  $transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
}

/**
 * Runs `fn` in a transaction with `app.tenant_id` set for that transaction only, which the
 * row-level-security policies of every tenant-owned table compare against. Without it a
 * query sees zero rows. The spans of its queries name the tenant (`portcullis.tenant_id`).
 */
export function createTenantScope<Tx extends RawQueryable>(db: TransactionRunner<Tx>) {
  return {
    run<R>(tenantId: string, fn: (tx: Tx) => Promise<R>): Promise<R> {
      if (!isUuid(tenantId)) throw new AppError('INVALID_ARGUMENT', 'tenant id must be a UUID');
      // Every span started inside (Prisma's transaction and query spans) carries portcullis.tenant_id.
      return context.with(withTenant(context.active(), tenantId), () =>
        db.$transaction(async (tx) => {
          await tx.$queryRaw`SELECT set_config('app.tenant_id', ${tenantId}, true)`;
          return fn(tx);
        }),
      );
    },
  };
}

export type TenantScope<Tx extends RawQueryable> = ReturnType<typeof createTenantScope<Tx>>;
