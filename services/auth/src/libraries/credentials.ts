import { AppError } from '@portcullis/kit';

export const EMAIL_MAX_LENGTH = 254;
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;
export const DISPLAY_NAME_MAX_LENGTH = 100;

// One "@", no whitespace, a non-empty local part and a dotted domain without empty labels.
const EMAIL_SHAPE = /^[^\s@]{1,64}@(?:[^\s@.]+\.)+[^\s@.]+$/u;

/** The canonical (trimmed, lowercased) form of a well-shaped email, or undefined. */
export function canonicalEmail(value: string): string | undefined {
  const email = value.trim().toLowerCase();
  if (email.length > EMAIL_MAX_LENGTH || !EMAIL_SHAPE.test(email)) return undefined;
  return email;
}

/** A canonical email, or INVALID_ARGUMENT. */
export function requireEmail(value: string): string {
  const email = canonicalEmail(value);
  if (email === undefined) {
    throw new AppError('INVALID_ARGUMENT', `email must be a valid address of at most ${EMAIL_MAX_LENGTH} characters`, {
      details: { field: 'email' },
    });
  }
  return email;
}

/**
 * Whether the length in characters (code points, so emoji count once) is within bounds.
 * A code point takes at most two UTF-16 units, which rules out huge inputs before splitting.
 */
function lengthWithin(value: string, min: number, max: number): boolean {
  if (value.length < min || value.length > max * 2) return false;
  const length = Array.from(value).length;
  return length >= min && length <= max;
}

/** True when a password's length is within the accepted range (its content is never inspected). */
export function hasAcceptedPasswordLength(password: string): boolean {
  return lengthWithin(password, PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH);
}

/** The password unchanged (never trimmed), or INVALID_ARGUMENT that does not echo it. */
export function requireNewPassword(password: string): string {
  if (!hasAcceptedPasswordLength(password)) {
    throw new AppError('INVALID_ARGUMENT', `password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`, {
      details: { field: 'password' },
    });
  }
  return password;
}

/** A trimmed display name (may be empty) of bounded length, or INVALID_ARGUMENT. */
export function requireDisplayName(value: string): string {
  const name = value.trim();
  if (!lengthWithin(name, 0, DISPLAY_NAME_MAX_LENGTH)) {
    throw new AppError('INVALID_ARGUMENT', `display_name must be at most ${DISPLAY_NAME_MAX_LENGTH} characters`, {
      details: { field: 'display_name' },
    });
  }
  return name;
}

// E.164: "+", a country code that does not start with 0, at most 15 digits in all.
const E164_SHAPE = /^\+[1-9]\d{6,14}$/u;
// Separators people type inside a number; removed before the shape check.
const PHONE_SEPARATORS = /[\s\-.()]/gu;

/** The normalised E.164 form of a phone number ("+86 138-0013-8000" → "+8613800138000"), or undefined. */
export function canonicalPhone(value: string): string | undefined {
  if (value.length > 32) return undefined;
  let phone = value.replace(PHONE_SEPARATORS, '');
  if (phone.startsWith('00')) phone = `+${phone.slice(2)}`;
  return E164_SHAPE.test(phone) ? phone : undefined;
}

/** A normalised E.164 phone number, or INVALID_ARGUMENT. */
export function requirePhone(value: string): string {
  const phone = canonicalPhone(value);
  if (phone === undefined) {
    throw new AppError('INVALID_ARGUMENT', 'phone must be an international number in E.164 form, e.g. +8613800138000', {
      details: { field: 'phone' },
    });
  }
  return phone;
}

/** The number with all but its last four digits masked, for logs and answers: "+86*******8000". */
export function maskPhone(phone: string): string {
  const visibleHead = phone.startsWith('+1') || phone.startsWith('+7') ? 2 : 3;
  return `${phone.slice(0, visibleHead)}${'*'.repeat(Math.max(0, phone.length - visibleHead - 4))}${phone.slice(-4)}`;
}
