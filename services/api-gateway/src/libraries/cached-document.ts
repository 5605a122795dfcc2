/**
 * A document fetched at most once per `ttlMs` (concurrent callers share one fetch); a failed
 * fetch is not kept. For public documents that every caller may ask for (the JWKS), so the
 * gateway never turns a flood of requests into a flood of fetches.
 */
export function cachedDocument<T>(load: () => Promise<T>, ttlMs: number, now: () => number = Date.now): () => Promise<T> {
  let held: { value: T; until: number } | undefined;
  let loading: Promise<T> | undefined;
  return () => {
    if (held && held.until > now()) return Promise.resolve(held.value);
    loading ??= load()
      .then((value) => {
        held = { value, until: now() + ttlMs };
        return value;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };
}
