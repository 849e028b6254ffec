/**
 * A structural diff (added, removed, renamed, changed) and a sharing diff (label pairs gained, lost), as a list a
 * person reads top to bottom. Used by the history's compare and the draft preview.
 */
import { useId } from 'react';
import type { ListChange, SharingDiff, StructuralDiff } from './common.tsx';
import { Pairs } from './common.tsx';

function Names({ sign, names }: { sign: '+' | '−'; names: readonly string[] }) {
  if (names.length === 0) return null;
  return <>{names.map((n) => <span key={n} className={sign === '+' ? 'pol-add' : 'pol-del'}>{sign} <span className="mono">{n}</span></span>)}</>;
}

function ListLine({ what, c }: { what: string; c: ListChange }) {
  if (c.added.length === 0 && c.removed.length === 0) return null;
  return <li><strong>{what}</strong>: <Names sign="+" names={c.added} /> <Names sign="−" names={c.removed} /></li>;
}

export function isEmptyDiff(d: StructuralDiff): boolean {
  const e = (c: ListChange) => c.added.length === 0 && c.removed.length === 0;
  return !d.name && !d.version && !d.host && e(d.colors) && e(d.walls) && e(d.conflicts) && d.conflicts.changed.length === 0
    && e(d.labels) && d.labels.changed.length === 0 && d.labels.renamed.length === 0
    && e(d.resources) && d.resources.changed.length === 0 && d.resources.renamed.length === 0;
}

export function StructuralDiffView({ diff }: { diff: StructuralDiff }) {
  if (isEmptyDiff(diff)) return <p className="muted">No structural change.</p>;
  return (
    <ul className="pol-diff" aria-label="Structural changes">
      {diff.name && <li><strong>name</strong>: <span className="mono">{diff.name.from}</span> → <span className="mono">{diff.name.to}</span></li>}
      {diff.version && <li><strong>version</strong>: <span className="mono">{diff.version.from}</span> → <span className="mono">{diff.version.to}</span></li>}
      {diff.host && <li><strong>host label</strong>: <span className="mono">{diff.host.from ?? 'none'}</span> → <span className="mono">{diff.host.to ?? 'none'}</span></li>}
      <ListLine what="colors" c={diff.colors} />
      <ListLine what="wall types" c={diff.walls} />
      <ListLine what="conflict sets" c={diff.conflicts} />
      {diff.conflicts.changed.map((c) => <ListLine key={`k${c.name}`} what={`conflict set ${c.name}`} c={c.walls} />)}
      <ListLine what="labels" c={diff.labels} />
      {diff.labels.renamed.map((r) => <li key={`lr${r.from}`}><strong>label renamed</strong>: <span className="mono">{r.from}</span> → <span className="mono">{r.to}</span></li>)}
      {diff.labels.changed.map((l) => (
        <li key={`lc${l.name}`}>
          <strong>label <span className="mono">{l.name}</span></strong>{l.from ? <> (was <span className="mono">{l.from}</span>)</> : null}:{' '}
          {(l.colors.added.length > 0 || l.colors.removed.length > 0) && <>colors <Names sign="+" names={l.colors.added} /> <Names sign="−" names={l.colors.removed} />{' '}</>}
          {(l.walls.added.length > 0 || l.walls.removed.length > 0) && <>walls <Names sign="+" names={l.walls.added} /> <Names sign="−" names={l.walls.removed} />{' '}</>}
          {l.onUntrusted && <>on untrusted: {l.onUntrusted.from} → {l.onUntrusted.to}</>}
        </li>
      ))}
      <ListLine what="resource labels" c={diff.resources} />
      {diff.resources.renamed.map((r) => <li key={`rr${r.from}`}><strong>resource label renamed</strong>: <span className="mono">{r.from}</span> → <span className="mono">{r.to}</span></li>)}
      {diff.resources.changed.map((r) => (
        <li key={`rc${r.name}`}><strong>resource label <span className="mono">{r.name}</span></strong>{r.color ? <>: color <span className="mono">{r.color.from}</span> → <span className="mono">{r.color.to}</span></> : null}</li>
      ))}
    </ul>
  );
}

export function SharingDiffView({ sharing }: { sharing: SharingDiff }) {
  const id = useId();
  return (
    <div className="row pol-sharing">
      <section aria-labelledby={`${id}g`} className="pol-col">
        <h4 id={`${id}g`}>Label pairs that gain sharing ({sharing.gained.length})</h4>
        <Pairs pairs={sharing.gained} empty="None." />
      </section>
      <section aria-labelledby={`${id}l`} className="pol-col">
        <h4 id={`${id}l`}>Label pairs that lose sharing ({sharing.lost.length})</h4>
        <Pairs pairs={sharing.lost} empty="None." />
      </section>
    </div>
  );
}
