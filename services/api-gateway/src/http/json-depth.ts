import { AppError } from '@portcullis/kit';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = new Set([0x5b, 0x7b]); // [ {
const CLOSE = new Set([0x5d, 0x7d]); // ] }

/**
 * Refuses a JSON body that is not UTF-8 (RFC 8259 JSON between systems is UTF-8; another charset
 * would also defeat the byte scan below) or is nested deeper than `maxDepth` arrays/objects.
 * The bytes are scanned before the body is parsed (strings skipped, escapes honoured), so a
 * deeply nested body never reaches the parser or the code walking the result. The syntax itself
 * is left to the parser.
 */
export function rejectUnsafeJson(body: Buffer, encoding: string, maxDepth: number): void {
  if (encoding.toLowerCase().replace('_', '-') !== 'utf-8') {
    throw new AppError('INVALID_ARGUMENT', 'request bodies must be JSON in UTF-8');
  }
  rejectDeepJson(body, maxDepth);
}

/** Refuses bytes of UTF-8 JSON nested deeper than `maxDepth` arrays/objects. */
export function rejectDeepJson(body: Buffer, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i += 1) {
    const byte = body[i];
    if (inString) {
      if (byte === BACKSLASH) i += 1;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte !== undefined && OPEN.has(byte)) {
      depth += 1;
      if (depth > maxDepth) throw new AppError('INVALID_ARGUMENT', `request body is nested too deeply (at most ${maxDepth} levels)`);
    } else if (byte !== undefined && CLOSE.has(byte)) {
      depth -= 1;
    }
  }
}
