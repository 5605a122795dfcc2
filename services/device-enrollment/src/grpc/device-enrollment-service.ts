import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { implement } from '@portcullis/kit';
import { DeviceEnrollmentService } from '@portcullis/proto/devices';
import type { DeviceRecord, EnrollmentLibrary } from '../libraries/enrollment.js';

export interface DeviceEnrollmentServiceDeps {
  enrollment: EnrollmentLibrary;
}

function deviceMessage({ id, tenantId, assistantId, ownerUserId, name, boundAt }: DeviceRecord) {
  return { id, tenantId, assistantId, ownerUserId, name, boundAt: timestampFromDate(boundAt) };
}

export function createDeviceEnrollmentService({ enrollment }: DeviceEnrollmentServiceDeps) {
  return implement(DeviceEnrollmentService, {
    async startActivation(request) {
      const started = await enrollment.startActivation(request);
      return { sessionId: started.sessionId, code: started.code, expiresAt: timestampFromDate(started.expiresAt) };
    },
    async bindDevice(request) {
      return { device: deviceMessage(await enrollment.bindDevice(request)) };
    },
    async listDevices(request) {
      const devices = await enrollment.listDevices(request.tenantId);
      return { devices: devices.map(deviceMessage) };
    },
  });
}
