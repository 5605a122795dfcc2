import { AppError } from './errors.js';

const MAX_HOST_LENGTH = 253;
const MAX_PORT = 65_535;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The canonical form of a request host: lowercase, without `:port` and without a trailing
 * dot. Returns undefined when what remains is not a valid DNS name (labels of letters,
 * digits and inner hyphens, each at most 63 characters, at most 253 in all).
 */
export function normalizeHost(raw: string): string | undefined {
  let host = raw.trim().toLowerCase();
  const port = /:(\d{1,5})$/.exec(host);
  if (port) {
    if (Number(port[1]) > MAX_PORT) return undefined;
    host = host.slice(0, port.index);
  }
  host = host.replace(/\.$/, '');
  if (host.length === 0 || host.length > MAX_HOST_LENGTH) return undefined;
  return host.split('.').every((label) => LABEL.test(label)) ? host : undefined;
}

/** The canonical host, or INVALID_ARGUMENT naming the field. */
export function requireHost(raw: string, field = 'host'): string {
  const host = normalizeHost(raw);
  if (host === undefined) throw new AppError('INVALID_ARGUMENT', `${field} must be a valid DNS name`, { details: { field } });
  return host;
}
