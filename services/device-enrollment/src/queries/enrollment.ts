import type { TenantScope } from '@portcullis/kit';
import type { Prisma } from '../generated/prisma/client.js';
import type { BindAttempt, DeviceRecord, EnrollmentStore, NewSession } from '../libraries/enrollment.js';

export type Tx = Prisma.TransactionClient;

const deviceColumns = { id: true, tenantId: true, assistantId: true, ownerUserId: true, name: true, boundAt: true } as const;

/** Sessions of one tenant and assistant that can still bind at `now`. */
function live(tenantId: string, assistantId: string, now: Date, maxAttempts: number) {
  return { tenantId, assistantId, consumedAt: null, expiresAt: { gt: now }, attempts: { lt: maxAttempts } };
}

export function createEnrollmentQueries(scope: TenantScope<Tx>) {
  return {
    createSession(tenantId: string, session: NewSession, now: Date, maxAttempts: number): Promise<{ id: string } | undefined> {
      return scope.run(tenantId, async (tx) => {
        const clash = await tx.activationSession.findFirst({
          where: { ...live(tenantId, session.assistantId, now, maxAttempts), codeHash: session.codeHash },
          select: { id: true },
        });
        if (clash) return undefined;
        return tx.activationSession.create({ data: { tenantId, ...session }, select: { id: true } });
      });
    },

    bind(tenantId: string, attempt: BindAttempt, onBound: (device: DeviceRecord) => Promise<void>): Promise<DeviceRecord | undefined> {
      const { assistantId, codeHash, ownerUserId, now, maxAttempts } = attempt;
      return scope.run(tenantId, async (tx) => {
        const session = await tx.activationSession.findFirst({
          where: { ...live(tenantId, assistantId, now, maxAttempts), codeHash },
          orderBy: { createdAt: 'desc' },
          select: { id: true, deviceName: true },
        });
        if (!session) {
          // A wrong code counts against every live session of the assistant, so guessing
          // burns the codes it could hit instead of getting unlimited tries.
          await tx.activationSession.updateMany({
            where: live(tenantId, assistantId, now, maxAttempts),
            data: { attempts: { increment: 1 } },
          });
          return undefined;
        }
        // Conditional consume: of concurrent binds with one code, exactly one sees count 1.
        const consumed = await tx.activationSession.updateMany({
          where: { ...live(tenantId, assistantId, now, maxAttempts), id: session.id },
          data: { consumedAt: now },
        });
        if (consumed.count !== 1) return undefined;
        const device = await tx.device.create({
          data: { tenantId, assistantId, ownerUserId, name: session.deviceName, boundAt: now },
          select: deviceColumns,
        });
        await onBound(device);
        return device;
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
