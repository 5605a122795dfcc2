export * from './infra.js';
export * from './audit-recorder.js';
