/**
 * The map's canvas: as large as its scrolling frame (it stays in view while the frame scrolls over a spacer as large
 * as the whole layout), redrawn in one pass on every change of the fleet, the filters, the zoom, the hover or the
 * keyboard cursor, and on scroll. The mouse: hover shows a VM's tooltip (text only), a click opens its page. The
 * keyboard: Tab reaches the canvas, the arrow keys (Home, End, Page Up/Down) move a cursor over the VMs, Enter
 * opens the VM, + and − zoom; a status line under the map says in words which VM the cursor is on.
 * After the first complete draw of a loaded fleet the canvas carries `data-ready="true"` and `data-vms` (the VMs on
 * the map), and the page gets the performance mark `hueguard-map-ready` (tests and `npm run bench:console`).
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent } from 'react';
import { useLocation } from 'wouter';
import { vmHref } from '../../ui.tsx';
import { drawMap, type Scene } from './draw.ts';
import { hitTest, layoutMap, move, type HostGroup, type MapLayout, type Move } from './layout.ts';
import { describeVm, hostTitle, NO_HOST, type Link, type Prepared, type Shown } from './model.ts';

const ZOOM = [10, 14, 20, 28, 40];
const KEYS: Record<string, Move> = {
  ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down', Home: 'home', End: 'end', PageUp: 'pageup', PageDown: 'pagedown',
};

const sameHosts = (a: readonly HostGroup[], b: readonly HostGroup[]) => a === b || (a.length === b.length && a.every((g, i) => g.name === b[i].name));

interface Props {
  p: Prepared;
  shown: Shown;
  trust: Uint8Array;
  links: Link[];
  /** the fleet has been loaded */
  ready: boolean;
}

export function MapCanvas({ p, shown, trust, links, ready }: Props) {
  const [, navigate] = useLocation();
  const frameRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(0);
  const [zoom, setZoom] = useState(2);
  const [hover, setHover] = useState(-1);
  const [selectedName, setSelectedName] = useState<string | null>(null);
  const [focused, setFocused] = useState(false);

  useLayoutEffect(() => {
    const el = frameRef.current!;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const layout: MapLayout | null = useMemo(() => (width > 0 ? layoutMap(shown.groups, width, ZOOM[zoom]) : null), [shown.groups, width, zoom]);
  const scene: Scene | null = useMemo(
    () => (layout ? { layout, order: shown.order, looks: p.looks, trust, match: shown.match, links } : null),
    [layout, shown, p.looks, trust, links],
  );
  const selected = selectedName === null ? -1 : shown.slotOf.get(selectedName) ?? -1;
  // a hover slot belongs to one layout: a new one (filters, zoom, fleet) forgets it
  const hovered = hover < (layout?.total ?? 0) ? hover : -1;

  const live = useRef({ scene, selected, hovered, focused, ready });
  live.current = { scene, selected, hovered, focused, ready };

  const drawNow = useCallback(() => {
    const c = canvasRef.current;
    const el = frameRef.current;
    const { scene: sc, ...v } = live.current;
    if (!c || !el || !sc) return;
    const dpr = window.devicePixelRatio || 1;
    const w = el.clientWidth;
    const h = el.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      c.style.width = `${w}px`;
      c.style.height = `${h}px`;
    }
    const ctx = c.getContext('2d', { alpha: false });
    if (!ctx) return;
    drawMap(ctx, sc, { scrollX: el.scrollLeft, scrollY: el.scrollTop, width: w, height: h, dpr, selected: v.selected, hovered: v.hovered, focused: v.focused });
    if (v.ready) {
      c.dataset.vms = String(sc.layout.total);
      if (c.dataset.ready !== 'true') {
        c.dataset.ready = 'true';
        if (performance.getEntriesByName('hueguard-map-ready').length === 0) performance.mark('hueguard-map-ready');
      }
    }
  }, []);

  // every change is drawn before the browser paints; scrolling is drawn once per frame
  useLayoutEffect(drawNow, [scene, selected, hovered, focused, ready, width, drawNow]);
  const frame = useRef(0);
  const schedule = useCallback(() => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      drawNow();
    });
  }, [drawNow]);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  const slotAt = (e: MouseEvent<HTMLCanvasElement>) => {
    const el = frameRef.current;
    if (!layout || !el) return -1;
    const r = e.currentTarget.getBoundingClientRect();
    return hitTest(layout, e.clientX - r.left + el.scrollLeft, e.clientY - r.top + el.scrollTop);
  };
  const nameAt = (slot: number) => p.vms[shown.order[slot]].name;
  const open = (slot: number) => navigate(vmHref(nameAt(slot)));

  const reveal = (slot: number) => {
    const el = frameRef.current;
    if (!layout || !el) return;
    const x = layout.x[slot];
    const y = layout.y[slot];
    const m = 12;
    if (y - m - 20 < el.scrollTop) el.scrollTop = y - m - 20;
    else if (y + layout.cell + m > el.scrollTop + el.clientHeight) el.scrollTop = y + layout.cell + m - el.clientHeight;
    if (x - m < el.scrollLeft) el.scrollLeft = x - m;
    else if (x + layout.cell + m > el.scrollLeft + el.clientWidth) el.scrollLeft = x + layout.cell + m - el.clientWidth;
  };

  const firstMatch = () => {
    for (let s = 0; s < shown.order.length; s++) if (shown.match[shown.order[s]] === 1) return s;
    return shown.order.length > 0 ? 0 : -1;
  };

  const onKeyDown = (e: KeyboardEvent<HTMLCanvasElement>) => {
    if (!layout) return;
    const m = KEYS[e.key];
    if (m) {
      e.preventDefault();
      const next = move(layout, selected, m);
      if (next >= 0) {
        reveal(next);
        setSelectedName(nameAt(next));
      }
    } else if ((e.key === 'Enter' || e.key === ' ') && selected >= 0) {
      e.preventDefault();
      open(selected);
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault();
      setZoom((z) => Math.min(ZOOM.length - 1, z + 1));
    } else if (e.key === '-') {
      e.preventDefault();
      setZoom((z) => Math.max(0, z - 1));
    }
  };

  const onFocus = () => {
    setFocused(true);
    if (selected < 0) {
      const s = firstMatch();
      if (s >= 0) {
        reveal(s);
        setSelectedName(nameAt(s));
      }
    }
  };

  // new filters show their hosts from the top; the cursor stays in view when the layout changes under it
  const groupsSeen = useRef(shown.groups);
  useLayoutEffect(() => {
    const el = frameRef.current;
    const before = el ? [el.scrollLeft, el.scrollTop] : [0, 0];
    if (el && !sameHosts(groupsSeen.current, shown.groups)) el.scrollTop = 0;
    groupsSeen.current = shown.groups;
    if (selected >= 0 && focused) reveal(selected);
    if (el && (el.scrollLeft !== before[0] || el.scrollTop !== before[1])) drawNow();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layout]);

  const hostCount = shown.groups.length;
  const summary = `Fleet map: ${shown.order.length.toLocaleString('en')} VMs on ${hostCount.toLocaleString('en')} hosts. ` +
    'Arrow keys move between VMs, Enter opens the VM, plus and minus zoom.';
  const selVm = selected >= 0 ? p.vms[shown.order[selected]] : null;
  const hovVm = hovered >= 0 ? p.vms[shown.order[hovered]] : null;

  let tip: { left: number; top: number } | null = null;
  if (hovVm && layout && frameRef.current) {
    const el = frameRef.current;
    const cx = layout.x[hovered] - el.scrollLeft;
    const cy = layout.y[hovered] - el.scrollTop;
    const left = cx + layout.cell + 10 + 260 > el.clientWidth ? Math.max(0, cx - 270) : cx + layout.cell + 10;
    tip = { left, top: Math.max(0, cy - 4) };
  }

  return (
    <div className="map-canvas-block">
      <div className="map-toolbar">
        <button type="button" onClick={() => setZoom((z) => Math.max(0, z - 1))} disabled={zoom === 0} aria-label="Zoom out">−</button>
        <button type="button" onClick={() => setZoom((z) => Math.min(ZOOM.length - 1, z + 1))} disabled={zoom === ZOOM.length - 1} aria-label="Zoom in">+</button>
        <span className="muted">cell {ZOOM[zoom]} px</span>
      </div>
      <div className="map-wrap">
        <div className="map-frame" ref={frameRef} style={{ height: layout ? layout.height + 2 : undefined }} onScroll={() => { if (hover >= 0) setHover(-1); schedule(); }}>
          <div className="map-spacer" style={{ width: layout?.width ?? 0, height: layout?.height ?? 0 }}>
            <canvas
              ref={canvasRef}
              className="map-canvas"
              tabIndex={0}
              role="application"
              aria-roledescription="fleet map"
              aria-label={summary}
              aria-describedby="map-cursor"
              onKeyDown={onKeyDown}
              onFocus={onFocus}
              onBlur={() => setFocused(false)}
              onPointerMove={(e) => {
                const s = slotAt(e);
                if (s !== hover) setHover(s);
                e.currentTarget.style.cursor = s >= 0 ? 'pointer' : 'default';
              }}
              onPointerLeave={() => setHover(-1)}
              onClick={(e) => {
                const s = slotAt(e);
                if (s >= 0) open(s);
              }}
            />
          </div>
        </div>
        {hovVm && tip && (
          <div className="map-tip" role="tooltip" style={{ left: tip.left, top: tip.top }} data-vm={hovVm.name}>
            <strong>{hovVm.name}</strong>
            <dl>
              <dt>label</dt><dd>{hovVm.label ?? '(unlabeled)'}</dd>
              <dt>colors</dt><dd>{hovVm.isolated && hovVm.effectiveColors.length === 0 ? `none: isolated (${hovVm.isolated})` : (p.colors[shown.order[hovered]].join(', ') || 'none')}</dd>
              <dt>trust</dt><dd>{hovVm.trust}</dd>
              <dt>host</dt><dd>{hostTitle(hovVm.host ?? NO_HOST)}</dd>
            </dl>
            {shown.match[shown.order[hovered]] === 0 && <em>does not match the filters</em>}
          </div>
        )}
      </div>
      <p id="map-cursor" className="map-cursor" aria-live="polite" data-vm={selVm?.name} data-trust={selVm?.trust}>
        {selVm
          ? <>Selected: {describeVm(selVm, p.colors[shown.order[selected]])}. Enter opens its page.</>
          : 'Tab to the map, then move between VMs with the arrow keys and open one with Enter.'}
      </p>
    </div>
  );
}
