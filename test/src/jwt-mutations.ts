import fc from 'fast-check';

/** A compact JWS with each segment decoded to hex: two strings are the same token iff these match. */
function decodedSegments(token: string): string {
  return token
    .split('.')
    .map((part) => Buffer.from(part, 'base64url').toString('hex'))
    .join('.');
}

/**
 * Every token that differs from `valid` in one character (a base64url letter, `-`, `_`, `.` or
 * `=`) and is really another token: a change confined to the unused low bits of a segment's last
 * base64url character decodes to the same bytes — the same token, not a forgery — and is left out.
 */
export function oneCharacterForgeries(valid: string): fc.Arbitrary<string> {
  return fc
    .tuple(fc.nat(valid.length - 1), fc.constantFrom('A', 'B', '-', '_', '.', '='))
    .map(([index, replacement]) => valid.slice(0, index) + replacement + valid.slice(index + 1))
    .filter((mutated) => decodedSegments(mutated) !== decodedSegments(valid) || mutated.split('.').length !== 3);
}
