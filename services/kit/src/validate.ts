import { AppError } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** A non-empty, trimmed string of at most `max` characters, or INVALID_ARGUMENT naming the field. */
export function requireText(value: string, field: string, max = 200): string {
  const trimmed = value.trim();
  if (trimmed.length === 0) throw new AppError('INVALID_ARGUMENT', `${field} is required`, { details: { field } });
  if (trimmed.length > max) throw new AppError('INVALID_ARGUMENT', `${field} must be at most ${max} characters`, { details: { field } });
  return trimmed;
}

/** A UUID, or INVALID_ARGUMENT naming the field. */
export function requireUuid(value: string, field: string): string {
  if (!isUuid(value)) throw new AppError('INVALID_ARGUMENT', `${field} must be a UUID`, { details: { field } });
  return value.toLowerCase();
}
