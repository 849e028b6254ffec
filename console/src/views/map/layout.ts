/**
 * Where everything on the fleet map goes: a pure function of the hosts (in order, each with its number of VMs), the
 * width there is and the cell size. Hosts are boxes in a grid (every box equally wide, a row as tall as its tallest
 * box); a host's VMs are cells inside its box, row by row. A VM is known by its *slot*: its place in host order
 * (host 0's VMs, then host 1's…). Hit-testing, what is visible and keyboard moves are answered from the layout alone,
 * so the map needs no DOM element per VM. No DOM, no React: tests import this under Node.
 */

export interface HostGroup {
  name: string;
  count: number;
}

export interface HostBox {
  name: string;
  x: number;
  y: number;
  w: number;
  h: number;
  /** the slot of its first VM */
  first: number;
  count: number;
  /** grid row and column */
  row: number;
  col: number;
}

export interface GridRow {
  y: number;
  h: number;
  /** hosts [from, to) */
  from: number;
  to: number;
}

export interface MapLayout {
  cell: number;
  /** cell + gap */
  pitch: number;
  /** cells per row inside a host box */
  cols: number;
  /** host boxes per grid row */
  gridCols: number;
  boxW: number;
  width: number;
  height: number;
  hosts: HostBox[];
  rows: GridRow[];
  /** per slot: the cell's top-left corner, and its host's index */
  x: Float32Array;
  y: Float32Array;
  host: Int32Array;
  total: number;
}

export const MARGIN = 8;
export const GAP = 12;
export const PAD = 6;
export const HEAD = 20;
const MIN_BOX_W = 120;
const MAX_HOST_COLS = 16;

/** The gap between two cells of one host. */
export const cellGap = (cell: number) => Math.max(2, Math.round(cell / 5));

export function layoutMap(groups: readonly HostGroup[], width: number, cell: number): MapLayout {
  const gap = cellGap(cell);
  const pitch = cell + gap;
  let most = 1;
  let total = 0;
  for (const g of groups) {
    most = Math.max(most, g.count);
    total += g.count;
  }
  // a box about 2.5 times as wide as it is tall, wide enough for a host's name
  let cols = Math.min(MAX_HOST_COLS, Math.max(1, Math.ceil(Math.sqrt(most * 2.5))));
  cols = Math.max(cols, Math.ceil((MIN_BOX_W - 2 * PAD + gap) / pitch));
  const boxW = 2 * PAD + cols * pitch - gap;
  const gridCols = Math.max(1, Math.floor((width - 2 * MARGIN + GAP) / (boxW + GAP)));
  const hosts: HostBox[] = new Array(groups.length);
  const rows: GridRow[] = [];
  const x = new Float32Array(total);
  const y = new Float32Array(total);
  const host = new Int32Array(total);
  let top = MARGIN;
  let slot = 0;
  for (let from = 0; from < groups.length; from += gridCols) {
    const to = Math.min(groups.length, from + gridCols);
    let rowH = 0;
    for (let i = from; i < to; i++) {
      const g = groups[i];
      const cellRows = Math.max(1, Math.ceil(g.count / cols));
      const h = HEAD + cellRows * pitch - gap + PAD;
      const bx = MARGIN + (i - from) * (boxW + GAP);
      hosts[i] = { name: g.name, x: bx, y: top, w: boxW, h, first: slot, count: g.count, row: rows.length, col: i - from };
      for (let k = 0; k < g.count; k++, slot++) {
        x[slot] = bx + PAD + (k % cols) * pitch;
        y[slot] = top + HEAD + Math.floor(k / cols) * pitch;
        host[slot] = i;
      }
      rowH = Math.max(rowH, h);
    }
    rows.push({ y: top, h: rowH, from, to });
    top += rowH + GAP;
  }
  const usedCols = Math.min(gridCols, Math.max(1, groups.length));
  return {
    cell, pitch, cols, gridCols, boxW,
    width: Math.max(width, 2 * MARGIN + usedCols * (boxW + GAP) - GAP),
    height: groups.length === 0 ? 2 * MARGIN : top - GAP + MARGIN,
    hosts, rows, x, y, host, total,
  };
}

/** The grid row at height `py`, or -1 (binary search: rows are in order). */
function rowAt(l: MapLayout, py: number): number {
  let lo = 0;
  let hi = l.rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = l.rows[mid];
    if (py < r.y) hi = mid - 1;
    else if (py >= r.y + r.h) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** The host whose box holds the point, or -1. */
export function hostAt(l: MapLayout, px: number, py: number): number {
  const r = rowAt(l, py);
  if (r < 0) return -1;
  const col = Math.floor((px - MARGIN) / (l.boxW + GAP));
  if (col < 0) return -1;
  const i = l.rows[r].from + col;
  if (i >= l.rows[r].to) return -1;
  const b = l.hosts[i];
  return px >= b.x && px < b.x + b.w && py >= b.y && py < b.y + b.h ? i : -1;
}

/** The slot of the VM cell under the point, or -1. */
export function hitTest(l: MapLayout, px: number, py: number): number {
  const i = hostAt(l, px, py);
  if (i < 0) return -1;
  const b = l.hosts[i];
  const cx = px - (b.x + PAD);
  const cy = py - (b.y + HEAD);
  if (cx < 0 || cy < 0) return -1;
  const c = Math.floor(cx / l.pitch);
  const r = Math.floor(cy / l.pitch);
  if (c >= l.cols || cx - c * l.pitch >= l.cell || cy - r * l.pitch >= l.cell) return -1;
  const k = r * l.cols + c;
  return k < b.count ? b.first + k : -1;
}

/** The hosts [from, to) whose grid rows meet the band [top, bottom). */
export function visibleHosts(l: MapLayout, top: number, bottom: number): [number, number] {
  if (l.rows.length === 0) return [0, 0];
  let lo = 0;
  let hi = l.rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (l.rows[mid].y + l.rows[mid].h <= top) lo = mid + 1;
    else hi = mid;
  }
  let end = lo;
  while (end < l.rows.length && l.rows[end].y < bottom) end++;
  if (lo >= l.rows.length || end === lo) return [0, 0];
  return [l.rows[lo].from, l.rows[end - 1].to];
}

export type Move = 'left' | 'right' | 'up' | 'down' | 'home' | 'end' | 'pageup' | 'pagedown';

/**
 * Where a key takes the cursor from `slot`: left and right go through the VMs in order (across hosts), up and down to
 * the cell above or below, into the host box above or below at the edge of a box; page up/down a grid row of hosts.
 */
export function move(l: MapLayout, slot: number, m: Move): number {
  if (l.total === 0) return -1;
  if (slot < 0 || slot >= l.total) return 0;
  switch (m) {
    case 'left': return Math.max(0, slot - 1);
    case 'right': return Math.min(l.total - 1, slot + 1);
    case 'home': return 0;
    case 'end': return l.total - 1;
  }
  const hi = l.host[slot];
  const b = l.hosts[hi];
  const k = slot - b.first;
  const c = k % l.cols;
  const step = m === 'up' || m === 'pageup' ? -1 : 1;
  if (m === 'up' && k - l.cols >= 0) return slot - l.cols;
  if (m === 'down' && k + l.cols < b.count) return slot + l.cols;
  // to the next box above or below (in the same column, or the row's last one) that has VMs
  let r = b.row;
  for (let n = 0; n < l.rows.length; n++) {
    r += step;
    if (r < 0 || r >= l.rows.length) return slot;
    const row = l.rows[r];
    const t = l.hosts[Math.min(row.to - 1, row.from + b.col)];
    if (t.count === 0) continue;
    if (step < 0) {
      const lastRow = Math.ceil(t.count / l.cols) - 1;
      return t.first + Math.min(t.count - 1, lastRow * l.cols + c);
    }
    return t.first + Math.min(t.count - 1, c);
  }
  return slot;
}
