import { AppError, z, type GrpcClient } from '@portcullis/kit';
import type { Device, DeviceEnrollmentService } from '@portcullis/proto/devices';
import { isoTime } from '../http/presenters.js';
import { parseInput, type ProtectedRoute } from '../http/route.js';

export interface DeviceRouteDeps {
  devices: Pick<GrpcClient<typeof DeviceEnrollmentService>, 'bindDevice' | 'listDevices'>;
}

function presentDevice(device: Device) {
  return {
    deviceId: device.id,
    name: device.name,
    assistantId: device.assistantId,
    ownerUserId: device.ownerUserId,
    boundAt: isoTime(device.boundAt),
  };
}

export function createDeviceRoutes({ devices }: DeviceRouteDeps): ProtectedRoute[] {
  return [
    {
      kind: 'protected',
      method: 'post',
      path: '/api/devices/bind',
      capability: { object: 'devices', action: 'bind' },
      needsAssistant: true,
      humansOnly: true,
      // Entering codes is how activation codes would be guessed: a stricter limit per person and address.
      sensitive: 'activationCode',
      summary: 'Bind the device showing this activation code to the signed-in user and the assistant',
      async handle({ request, target, principal }, { body }) {
        const input = parseInput(z.object({ code: z.string().min(1).max(16) }), body);
        const { device } = await devices.bindDevice(
          { tenantId: target.tenantId, assistantId: target.assistantId, code: input.code, userId: principal.id },
          { requestId: request.requestId },
        );
        if (!device) throw new AppError('INTERNAL', 'device enrollment returned no device');
        return { status: 201, body: presentDevice(device) };
      },
    },
    {
      kind: 'protected',
      method: 'get',
      path: '/api/devices',
      capability: { object: 'devices', action: 'read' },
      summary: "List the tenant's devices",
      async handle({ request, target }) {
        const result = await devices.listDevices({ tenantId: target.tenantId }, { requestId: request.requestId });
        return { body: { devices: result.devices.map(presentDevice) } };
      },
    },
  ];
}
