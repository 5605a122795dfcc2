// A minimal browser for sign-in tests: follows redirects by hand and keeps cookies the way a
// browser does for plain-http loopback hosts (per host, whatever the port; Path prefixes;
// Max-Age/Expires deletions). Enough for oidc-provider's interaction cookies and the gateway's
// binding cookie; not a general cookie jar.

interface StoredCookie {
  value: string;
  path: string;
}

export interface BrowserResponse {
  status: number;
  headers: Headers;
  /** The redirect target, resolved against the request URL. */
  location: URL | undefined;
  text: string;
}

export interface TestBrowser {
  /** One GET (no redirect following), sending and storing cookies. */
  get(url: string | URL, headers?: Record<string, string>): Promise<BrowserResponse>;
  /**
   * Follows redirects from `url` until one points at a URL for which `stop` is true, and returns
   * that URL without requesting it (the callback a test wants to deliver itself).
   */
  followUntil(url: string | URL, stop: (target: URL) => boolean, maxHops?: number): Promise<URL>;
  /** The value of a cookie the browser holds for the host. */
  cookie(host: string, name: string): string | undefined;
  /** Sets or replaces a cookie (Path=/), as another tab or an attacker's page could. */
  setCookie(host: string, name: string, value: string): void;
}

export function createTestBrowser(): TestBrowser {
  const jar = new Map<string, Map<string, StoredCookie>>();
  const cookiesOf = (host: string) => {
    let cookies = jar.get(host);
    if (!cookies) jar.set(host, (cookies = new Map<string, StoredCookie>()));
    return cookies;
  };

  const store = (url: URL, header: string) => {
    const [pair = '', ...attributes] = header.split(';').map((part) => part.trim());
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = '/';
    let expired = false;
    for (const attribute of attributes) {
      const [key = '', val = ''] = attribute.split('=');
      const lower = key.toLowerCase();
      if (lower === 'path' && val.startsWith('/')) path = val;
      if (lower === 'max-age' && Number(val) <= 0) expired = true;
      if (lower === 'expires' && Date.parse(val) <= Date.now()) expired = true;
    }
    const cookies = cookiesOf(url.hostname);
    if (expired) cookies.delete(name);
    else cookies.set(name, { value, path });
  };

  const cookieHeader = (url: URL) =>
    [...cookiesOf(url.hostname)]
      .filter(
        ([, cookie]) =>
          url.pathname === cookie.path || url.pathname.startsWith(cookie.path.endsWith('/') ? cookie.path : `${cookie.path}/`),
      )
      .map(([name, cookie]) => `${name}=${cookie.value}`)
      .join('; ');

  const get = async (input: string | URL, headers: Record<string, string> = {}): Promise<BrowserResponse> => {
    const url = new URL(input);
    const cookie = cookieHeader(url);
    const response = await fetch(url, {
      redirect: 'manual',
      headers: { accept: 'text/html,application/json', ...(cookie ? { cookie } : {}), ...headers },
      signal: AbortSignal.timeout(15_000),
    });
    for (const header of response.headers.getSetCookie()) store(url, header);
    const location = response.headers.get('location');
    return {
      status: response.status,
      headers: response.headers,
      location: location ? new URL(location, url) : undefined,
      text: await response.text(),
    };
  };

  return {
    get,
    async followUntil(input, stop, maxHops = 10) {
      let url = new URL(input);
      for (let hop = 0; hop < maxHops; hop += 1) {
        const response = await get(url);
        if (!response.location) {
          throw new Error(
            `GET ${url.origin}${url.pathname} answered ${response.status} without a redirect: ${response.text.slice(0, 300)}`,
          );
        }
        if (stop(response.location)) return response.location;
        url = response.location;
      }
      throw new Error(`more than ${maxHops} redirects from ${new URL(input).origin}`);
    },
    cookie: (host, name) => cookiesOf(host).get(name)?.value,
    setCookie(host, name, value) {
      cookiesOf(host).set(name, { value, path: '/' });
    },
  };
}
