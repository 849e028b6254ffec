/**
 * Wait for a condition in an end-to-end test: `f` is asked every `everyMs` until it gives a truthy value, which is
 * returned; after `ms` the test fails naming what it waited for, with `context()` (an agent's log, the events seen)
 * to say why.
 */
export async function until<T>(
  what: string,
  f: () => T | Promise<T>,
  opts: { ms?: number; everyMs?: number; context?: () => string | Promise<string> } = {},
): Promise<NonNullable<T>> {
  const { ms = 15_000, everyMs = 50, context } = opts;
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting ${ms} ms for ${what}${context ? `\n${await context()}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
