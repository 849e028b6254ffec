/**
 * A promise-chain mutex: `run` calls start one after another, each once the previous one has settled. The SQLite
 * store runs every call through one so that, with one connection and an async API, no call's statements land inside
 * another caller's open transaction; both stores use one per open transaction so that calls made concurrently inside
 * it (Promise.all in `fn`) run one at a time on its connection.
 */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
