/**
 * What both what-if questions do with their answer: ask the controller (POST `path` with the question as the body),
 * keep only the latest answer (a slower earlier one never overwrites it), turn a refusal into errors next to the
 * fields it names, and ask again, quietly, whenever what the answer depends on in the fleet changes (`follow`).
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, post } from '../../api.ts';

export interface LiveQuestion<Q, A, E> {
  answer: { q: Q; res: A } | null;
  errors: E;
  setErrors: (e: E) => void;
  busy: boolean;
  ask: (q: Q, quiet?: boolean) => Promise<void>;
}

export function useLiveQuestion<Q extends object, A, E extends { form?: string }>(opts: {
  path: string;
  /** the field errors of a refusal (`err` null: the controller could not be reached) */
  errorsOf: (message: string, err: ApiError | null, q: Q) => E;
  /** what the answer depends on, as a string that changes when it does */
  follow: (q: Q) => string;
  /** when `follow` may give something new (e.g. the fleet's revision) */
  followDeps: readonly unknown[];
}): LiveQuestion<Q, A, E> {
  const [answer, setAnswer] = useState<{ q: Q; res: A } | null>(null);
  const [errors, setErrors] = useState<E>({} as E);
  const [busy, setBusy] = useState(false);
  const asked = useRef(0);

  async function ask(q: Q, quiet = false): Promise<void> {
    const mine = ++asked.current;
    if (!quiet) setBusy(true);
    try {
      const res = await post<A>(opts.path, q);
      if (mine === asked.current) {
        setAnswer({ q, res });
        setErrors({} as E);
      }
    } catch (err) {
      if (mine !== asked.current) return;
      const api = err instanceof ApiError ? err : null;
      setErrors(opts.errorsOf(api ? api.message : 'The controller cannot be reached.', api, q));
      if (!quiet) setAnswer(null);
    } finally {
      if (!quiet) setBusy(false);
    }
  }

  // eslint-disable-next-line react-hooks/exhaustive-deps
  const key = useMemo(() => (answer ? opts.follow(answer.q) : ''), [answer, ...opts.followDeps]);
  const lastKey = useRef('');
  useEffect(() => {
    if (!answer) {
      lastKey.current = '';
      return;
    }
    if (lastKey.current !== '' && lastKey.current !== key) void ask(answer.q, true);
    lastKey.current = key;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  return { answer, errors, setErrors, busy, ask };
}
