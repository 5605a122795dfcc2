/** Far more than any request of ours carries; the rest of an oversized header is ignored. */
const MAX_COOKIES = 50;
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/u;

/**
 * The cookies of a Cookie header, name → value (the first of a repeated name, which is the
 * most specific one a browser sends). Values are taken as they are (no decoding): the gateway's
 * own cookies are base64url. Malformed pairs are skipped.
 */
export function parseCookieHeader(header: string | undefined): Readonly<Record<string, string>> {
  const cookies: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header) return cookies;
  let count = 0;
  for (const pair of header.split(';')) {
    if (count >= MAX_COOKIES) break;
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!COOKIE_NAME.test(name) || name in cookies) continue;
    cookies[name] = value;
    count += 1;
  }
  return cookies;
}
