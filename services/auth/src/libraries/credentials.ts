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
