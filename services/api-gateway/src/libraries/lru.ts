/**
 * A Map used as a least-recently-used cache: insertion order is recency. The three in-process
 * caches (contexts, decisions, verified tokens) keep their entries this way.
 */

/** The entry of `key`, moved to most recently used; undefined when absent. */
export function touch<K, V>(entries: Map<K, V>, key: K): V | undefined {
  const value = entries.get(key);
  if (value === undefined) return undefined;
  entries.delete(key);
  entries.set(key, value);
  return value;
}

/** Sets `key` as the most recently used entry, then drops the least recently used beyond `maxEntries`. */
export function setBounded<K, V>(entries: Map<K, V>, key: K, value: V, maxEntries: number): void {
  entries.delete(key);
  entries.set(key, value);
  while (entries.size > maxEntries) {
    const oldest = entries.keys().next();
    if (oldest.done === true) break;
    entries.delete(oldest.value);
  }
}
