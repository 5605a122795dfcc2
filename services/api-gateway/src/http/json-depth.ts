import { AppError } from '@portcullis/kit';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = new Set([0x5b, 0x7b]); // [ {
const CLOSE = new Set([0x5d, 0x7d]); // ] }

/**
 * Refuses a JSON body nested deeper than `maxDepth` arrays/objects, by scanning its bytes before
 * it is parsed (strings skipped, escapes honoured), so a deeply nested body never reaches the
 * parser or the code walking the result. The syntax itself is left to the parser.
 */
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
