import { once } from 'node:events';
import type { Response } from 'express';
import type { Logger } from '@portcullis/kit';

/**
 * Writes `lines` as the response body, one per line, waiting whenever the client reads slower
 * than the lines come. A failure after the first line cannot change the status any more: the
 * stream is cut short (the format's missing last line says so) and the failure is logged with
 * the request id.
 */
export async function streamLines(
  res: Response,
  { lines, contentType, requestId, logger }: { lines: AsyncIterable<string>; contentType: string; requestId: string; logger: Logger },
): Promise<void> {
  res.status(200).type(contentType);
  try {
    for await (const line of lines) {
      if (res.destroyed) return;
      if (!res.write(`${line}\n`)) await once(res, 'drain');
    }
    res.end();
  } catch (error) {
    logger.warn({ err: error, requestId }, 'streamed answer cut short');
    res.destroy();
  }
}
