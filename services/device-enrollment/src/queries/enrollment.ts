import type { TenantScope } from '@portcullis/kit';
import type { Prisma } from '../generated/prisma/client.js';
import type { BindAttempt, BindResult, DeviceRecord, EnrollmentStore, NewSession } from '../libraries/enrollment.js';

export type Tx = Prisma.TransactionClient;

const deviceColumns = { id: true, tenantId: true, assistantId: true, ownerUserId: true, name: true, boundAt: true } as const;

/** Sessions of one tenant and assistant that can still bind at `now`. */
function live(tenantId: string, assistantId: string, now: Date) {
  return { tenantId, assistantId, consumedAt: null, expiresAt: { gt: now } };
}

/**
 * Holds, until the transaction ends, a lock on one user's binds in one tenant, so that
 * concurrent wrong codes from that user are counted one after another and cannot overrun
 * the limit together.
 */
async function lockUserBinds(tx: Tx, tenantId: string, userId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`device-bind:${tenantId}:${userId}`}, 0))`;
}

/** Records one failed bind for the user and forgets that user's failures older than the window. */
async function recordFailure(tx: Tx, tenantId: string, attempt: BindAttempt): Promise<void> {
  await tx.bindFailure.deleteMany({ where: { tenantId, userId: attempt.ownerUserId, failedAt: { lte: attempt.failedBindsSince } } });
  await tx.bindFailure.create({
    data: { tenantId, userId: attempt.ownerUserId, assistantId: attempt.assistantId, failedAt: attempt.now },
    select: { id: true },
  });
}

export function createEnrollmentQueries(scope: TenantScope<Tx>) {
  return {
    createSession(tenantId: string, session: NewSession, now: Date): Promise<{ id: string } | undefined> {
      return scope.run(tenantId, async (tx) => {
        const clash = await tx.activationSession.findFirst({
          where: { ...live(tenantId, session.assistantId, now), codeHash: session.codeHash },
          select: { id: true },
        });
        if (clash) return undefined;
        return tx.activationSession.create({ data: { tenantId, ...session }, select: { id: true } });
      });
    },

    bind(tenantId: string, attempt: BindAttempt, onBound: (device: DeviceRecord) => Promise<void>): Promise<BindResult> {
      const { assistantId, codeHash, ownerUserId, now, failedBindsSince, maxFailedBinds } = attempt;
      return scope.run(tenantId, async (tx): Promise<BindResult> => {
        await lockUserBinds(tx, tenantId, ownerUserId);
        const failures = await tx.bindFailure.count({ where: { tenantId, userId: ownerUserId, failedAt: { gt: failedBindsSince } } });
        if (failures >= maxFailedBinds) return { outcome: 'rate-limited' };

        const session = await tx.activationSession.findFirst({
          where: { ...live(tenantId, assistantId, now), codeHash },
          orderBy: { createdAt: 'desc' },
          select: { id: true, deviceName: true },
        });
        // Conditional consume: of concurrent binds with one code, exactly one sees count 1.
        const consumed = session
          ? await tx.activationSession.updateMany({
              where: { ...live(tenantId, assistantId, now), id: session.id },
              data: { consumedAt: now },
            })
          : undefined;
        if (!session || consumed?.count !== 1) {
          // Counted against this user only: nobody else's session is touched by a wrong code.
          await recordFailure(tx, tenantId, attempt);
          return { outcome: 'wrong-code' };
        }
        const device = await tx.device.create({
          data: { tenantId, assistantId, ownerUserId, name: session.deviceName, boundAt: now },
          select: deviceColumns,
        });
        await onBound(device);
        return { outcome: 'bound', device };
      });
    },

    listDevices(tenantId: string): Promise<DeviceRecord[]> {
      return scope.run(tenantId, (tx) =>
        tx.device.findMany({ where: { tenantId }, select: deviceColumns, orderBy: [{ boundAt: 'asc' }, { id: 'asc' }] }),
      );
    },
  } satisfies EnrollmentStore;
}

export type EnrollmentQueries = ReturnType<typeof createEnrollmentQueries>;
