/**
 * The map's legend: every color (its hue and pattern, its name, the labels that have it), the isolated and the
 * colorless looks, the labels with their colors and how many VMs carry each, the four trust states as the map draws
 * them (a border that differs in more than hue, and the word), and the blocked-attempt arrow.
 */
import { useEffect, useMemo, useRef } from 'react';
import type { PolicyDoc } from '../../policy-doc.ts';
import { ISOLATED, NO_COLOR } from '../../palette.ts';
import { ColorChips, Swatch } from '../../ui.tsx';
import { drawTrustSample, TRUST_ORDER } from './draw.ts';
import type { Prepared } from './model.ts';

const TRUST_WORDS: Record<string, string> = {
  trusted: 'trusted: solid border',
  unverified: 'unverified: dashed border',
  untrusted: 'untrusted: thick red border and a cross',
  unreachable: 'unreachable: dotted border, faded',
};

/** A small canvas, sharp on high-density screens, drawn once by `draw` (in CSS pixels, scaled by `dpr`). */
function Sample({ width, draw, wide }: { width: number; draw: (ctx: CanvasRenderingContext2D, dpr: number) => void; wide?: boolean }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(18 * dpr);
    draw(ctx, dpr);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [width]);
  return <canvas ref={ref} className={wide ? 'map-sample wide' : 'map-sample'} aria-hidden="true" />;
}

const TrustSample = ({ t }: { t: number }) => <Sample width={18} draw={(ctx, dpr) => drawTrustSample(ctx, t, 18, dpr)} />;

/** The blocked-attempt arrow, as the map draws it. */
function drawLinkSample(ctx: CanvasRenderingContext2D, dpr: number): void {
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.strokeStyle = '#c4001a';
  ctx.fillStyle = '#c4001a';
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  ctx.moveTo(2, 9);
  ctx.lineTo(26, 9);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(34, 9);
  ctx.lineTo(25, 4);
  ctx.lineTo(25, 14);
  ctx.closePath();
  ctx.fill();
}

export function Legend({ p, doc }: { p: Prepared; doc: PolicyDoc | null }) {
  const counts = useMemo(() => {
    const m = new Map<string, number>();
    for (const v of p.vms) m.set(v.label ?? '', (m.get(v.label ?? '') ?? 0) + 1);
    return m;
  }, [p]);
  // the labels that have each color (the hosts' bootstrap label only when a VM carries it: it has them all)
  const labelsOf = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const l of p.labels) {
      if (doc && l === doc.host && !counts.has(l)) continue;
      for (const c of doc?.labels[l]?.colors ?? []) m.set(c, [...(m.get(c) ?? []), l]);
    }
    return m;
  }, [p, doc, counts]);

  return (
    <section className="map-legend" aria-labelledby="map-legend-title">
      <h2 id="map-legend-title">Legend</h2>
      <h3>Colors</h3>
      <p className="muted map-small">VMs that share a color may talk. Each color has a hue, a pattern and a name.</p>
      <ul className="map-keys">
        {p.colorNames.map((c) => (
          <li key={c} data-color={c}>
            <Swatch style={p.styleOf(c)} size={16} />
            <span className="name">{c}</span>
            <span className="muted">{(labelsOf.get(c) ?? []).join(', ') || 'no label'}</span>
          </li>
        ))}
        <li data-color=":isolated"><Swatch style={ISOLATED} size={16} /><span className="name">isolated</span><span className="muted">no colors now (untrusted, unverified, revoked…)</span></li>
        <li data-color=":none"><Swatch style={NO_COLOR} size={16} /><span className="name">no color</span><span className="muted">a label without colors</span></li>
      </ul>
      <h3>Labels</h3>
      {doc?.host && !counts.has(doc.host) && <p className="muted map-small">Hosts run with the label {doc.host}: they may run VMs of its colors.</p>}
      <ul className="map-keys labels">
        {p.labels.filter((l) => l !== doc?.host || counts.has(l)).map((l) => (
          <li key={l} data-label={l}>
            <span className="name">{l}</span>
            <span><ColorChips colors={doc?.labels[l]?.colors ?? []} /></span>
            <span className="muted">{counts.get(l) ?? 0} VMs</span>
          </li>
        ))}
        {p.unlabeled > 0 && <li data-label=":unlabeled"><span className="name">(unlabeled)</span><span /><span className="muted">{p.unlabeled} VMs</span></li>}
      </ul>
      <h3>Trust</h3>
      <ul className="map-keys">
        {TRUST_ORDER.map((t, i) => <li key={t} data-trust={t}><TrustSample t={i} /><span>{TRUST_WORDS[t]}</span></li>)}
      </ul>
      <h3>Blocked attempts</h3>
      <ul className="map-keys">
        <li><Sample width={36} wide draw={drawLinkSample} /><span>from → to, with the packets dropped</span></li>
      </ul>
    </section>
  );
}
