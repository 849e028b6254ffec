/** A moment as people read it (local time), with the exact ISO time on hover and in `dateTime`. */
export function When({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">never</span>;
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return <span>{at}</span>;
  return <time dateTime={at} title={at}>{d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' })}</time>;
}

/** The field an API error names (`details.field`, e.g. `body.reason` or `querystring.actor`), as its last part. */
export function fieldOf(field: string | undefined): string | undefined {
  if (!field) return undefined;
  const m = /([A-Za-z0-9_]+)(?:\[\d+\])*$/.exec(field);
  return m ? m[1] : undefined;
}
