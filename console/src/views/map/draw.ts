/**
 * The fleet map on a 2D canvas, one pass over what is in view: host boxes with their names, each VM cell in bands
 * (one per color: hue and pattern, `paint` from the palette), its trust as a border that differs in more than hue
 * (trusted solid, unverified dashed, untrusted thick with a cross, unreachable dotted and faded), VMs that miss the
 * filters faint, blocked attempts as red arrows with their packet counts, and the keyboard cursor and the hovered
 * cell ringed. Device-pixel-ratio aware; no allocation per cell.
 */
import type { TrustState } from '../../../../src/api/types.ts';
import { paint, type ColorStyle } from '../../palette.ts';
import { HEAD, PAD, visibleHosts, type MapLayout } from './layout.ts';
import { hostTitle, type Link } from './model.ts';

export interface Scene {
  layout: MapLayout;
  /** slot → VM index */
  order: Int32Array;
  /** per VM */
  looks: ColorStyle[][];
  trust: Uint8Array;
  match: Uint8Array;
  links: Link[];
}

export interface View {
  scrollX: number;
  scrollY: number;
  width: number;
  height: number;
  dpr: number;
  selected: number;
  hovered: number;
  focused: boolean;
}

export const TRUST_ORDER: TrustState[] = ['trusted', 'unverified', 'untrusted', 'unreachable'];
export const trustIndex = (t: TrustState) => Math.max(0, TRUST_ORDER.indexOf(t));

const BG = '#eef0f3';
const LINK = '#c4001a';
const FAINT = 0.16;
const FADED = 0.45;

interface Border { color: string; width: number; dash: number[] }
export const BORDERS: Border[] = [
  { color: '#1d1d1f', width: 1, dash: [] },
  { color: '#7a5c00', width: 2, dash: [4, 2] },
  { color: '#b00020', width: 3, dash: [] },
  { color: '#444', width: 1.5, dash: [1.5, 2] },
];

/** Slots in view per (trust, faint): their borders are stroked together. */
const buckets: number[][] = Array.from({ length: 8 }, () => []);
const nameCache = new Map<string, string>();

function fit(ctx: CanvasRenderingContext2D, text: string, max: number): string {
  const key = `${max}\0${text}`;
  let s = nameCache.get(key);
  if (s !== undefined) return s;
  s = text;
  if (ctx.measureText(s).width > max) {
    let lo = 0;
    let hi = text.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + '…').width <= max) lo = mid;
      else hi = mid - 1;
    }
    s = text.slice(0, lo) + '…';
  }
  if (nameCache.size > 5000) nameCache.clear();
  nameCache.set(key, s);
  return s;
}

/** One VM cell's bands. */
function cell(ctx: CanvasRenderingContext2D, look: ColorStyle[], x: number, y: number, size: number): void {
  const n = look.length;
  if (n === 1) return paint(ctx, look[0], x, y, size, size);
  const w = size / n;
  for (let k = 0; k < n; k++) paint(ctx, look[k], x + k * w, y, k === n - 1 ? size - k * w : w, size);
}

/** A trust state's border (and cross), for the map and the legend alike. */
export function trustBorder(ctx: CanvasRenderingContext2D, t: number, x: number, y: number, size: number): void {
  const b = BORDERS[t];
  ctx.rect(x + b.width / 2, y + b.width / 2, size - b.width, size - b.width);
}

function cross(ctx: CanvasRenderingContext2D, x: number, y: number, size: number): void {
  const i = size * 0.22;
  ctx.moveTo(x + i, y + i);
  ctx.lineTo(x + size - i, y + size - i);
  ctx.moveTo(x + size - i, y + i);
  ctx.lineTo(x + i, y + size - i);
}

function strokeBucket(ctx: CanvasRenderingContext2D, L: MapLayout, slots: number[], t: number): void {
  if (slots.length === 0) return;
  const b = BORDERS[t];
  const size = L.cell;
  ctx.beginPath();
  for (const s of slots) trustBorder(ctx, t, L.x[s], L.y[s], size);
  ctx.strokeStyle = b.color;
  ctx.lineWidth = b.width;
  ctx.setLineDash(b.dash);
  ctx.stroke();
  ctx.setLineDash([]);
  if (t === 2) {
    // untrusted: a cross over the cell, light under dark so that it shows on every hue
    ctx.beginPath();
    for (const s of slots) cross(ctx, L.x[s], L.y[s], size);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = Math.max(3, size / 5);
    ctx.stroke();
    ctx.strokeStyle = b.color;
    ctx.lineWidth = Math.max(1.5, size / 10);
    ctx.stroke();
  }
}

/** Draws the map; returns the number of VM cells drawn. */
export function drawMap(ctx: CanvasRenderingContext2D, sc: Scene, v: View): number {
  const L = sc.layout;
  const { dpr } = v;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.globalAlpha = 1;
  ctx.fillStyle = BG;
  ctx.fillRect(0, 0, v.width, v.height);
  ctx.setTransform(dpr, 0, 0, dpr, -v.scrollX * dpr, -v.scrollY * dpr);
  const left = v.scrollX;
  const right = v.scrollX + v.width;
  const [h0, h1] = visibleHosts(L, v.scrollY, v.scrollY + v.height);

  // host boxes and names
  ctx.beginPath();
  for (let i = h0; i < h1; i++) {
    const b = L.hosts[i];
    if (b.x > right || b.x + b.w < left) continue;
    ctx.rect(b.x + 0.5, b.y + 0.5, b.w - 1, b.h - 1);
  }
  ctx.fillStyle = '#fff';
  ctx.fill();
  ctx.strokeStyle = '#b9bcc6';
  ctx.lineWidth = 1;
  ctx.stroke();
  ctx.font = '600 12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.fillStyle = '#1f2430';
  for (let i = h0; i < h1; i++) {
    const b = L.hosts[i];
    if (b.x > right || b.x + b.w < left) continue;
    ctx.fillText(fit(ctx, hostTitle(b.name), b.w - 2 * PAD), b.x + PAD, b.y + HEAD / 2 + 1);
    if (b.count === 0) {
      ctx.font = 'italic 11px system-ui, sans-serif';
      ctx.fillStyle = '#666';
      ctx.fillText('no VMs', b.x + PAD, b.y + HEAD + L.cell / 2);
      ctx.font = '600 12px system-ui, sans-serif';
      ctx.fillStyle = '#1f2430';
    }
  }

  // cells
  for (const bucket of buckets) bucket.length = 0;
  let drawn = 0;
  let alpha = 1;
  const size = L.cell;
  for (let i = h0; i < h1; i++) {
    const b = L.hosts[i];
    if (b.x > right || b.x + b.w < left) continue;
    for (let s = b.first, end = b.first + b.count; s < end; s++) {
      const vm = sc.order[s];
      const t = sc.trust[vm];
      const faint = sc.match[vm] === 0;
      const a = (faint ? FAINT : 1) * (t === 3 ? FADED : 1);
      if (a !== alpha) ctx.globalAlpha = alpha = a;
      cell(ctx, sc.looks[vm], L.x[s], L.y[s], size);
      buckets[t * 2 + (faint ? 1 : 0)].push(s);
      drawn++;
    }
  }
  for (let k = 0; k < 8; k++) {
    const a = k & 1 ? FAINT : 1;
    if (a !== alpha) ctx.globalAlpha = alpha = a;
    strokeBucket(ctx, L, buckets[k], k >> 1);
  }
  if (alpha !== 1) ctx.globalAlpha = alpha = 1;

  // blocked attempts: from → to, with the packets
  if (sc.links.length > 0) drawLinks(ctx, sc, v);

  // the hovered cell and the keyboard cursor
  if (v.hovered >= 0 && v.hovered < L.total) {
    ctx.beginPath();
    ctx.rect(L.x[v.hovered] - 2.5, L.y[v.hovered] - 2.5, size + 5, size + 5);
    ctx.strokeStyle = '#1f2430';
    ctx.lineWidth = 2;
    ctx.stroke();
  }
  if (v.selected >= 0 && v.selected < L.total) {
    ctx.beginPath();
    ctx.rect(L.x[v.selected] - 4, L.y[v.selected] - 4, size + 8, size + 8);
    ctx.strokeStyle = v.focused ? '#ff9f1c' : '#1f2430';
    ctx.lineWidth = v.focused ? 3 : 1.5;
    ctx.setLineDash(v.focused ? [] : [3, 3]);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  return drawn;
}

function drawLinks(ctx: CanvasRenderingContext2D, sc: Scene, v: View): void {
  const L = sc.layout;
  const half = L.cell / 2;
  const top = v.scrollY - 60;
  const bottom = v.scrollY + v.height + 60;
  ctx.font = '600 11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'center';
  for (const l of sc.links) {
    const ax = L.x[l.from] + half;
    const ay = L.y[l.from] + half;
    const bx = L.x[l.to] + half;
    const by = L.y[l.to] + half;
    if (Math.max(ay, by) < top || Math.min(ay, by) > bottom) continue;
    const faint = sc.match[sc.order[l.from]] === 0 && sc.match[sc.order[l.to]] === 0;
    ctx.globalAlpha = faint ? 0.3 : 1;
    // a bow to the right of the direction of travel, so that a→b and b→a do not overlap
    const dx = bx - ax;
    const dy = by - ay;
    const d = Math.hypot(dx, dy) || 1;
    const bow = Math.max(half + 10, Math.min(48, d * 0.3));
    const cx = (ax + bx) / 2 - (dy / d) * bow;
    const cy = (ay + by) / 2 + (dx / d) * bow;
    // from the source cell's edge to the target cell's edge, with an arrowhead along the curve's last tangent
    const sx = cx - ax;
    const sy = cy - ay;
    const sd = Math.hypot(sx, sy) || 1;
    const ox = ax + (sx / sd) * half;
    const oy = ay + (sy / sd) * half;
    const tx = bx - cx;
    const ty = by - cy;
    const td = Math.hypot(tx, ty) || 1;
    const ex = bx - (tx / td) * (half + 2);
    const ey = by - (ty / td) * (half + 2);
    ctx.beginPath();
    ctx.moveTo(ox, oy);
    ctx.quadraticCurveTo(cx, cy, ex, ey);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 4.5;
    ctx.stroke();
    ctx.strokeStyle = LINK;
    ctx.lineWidth = 2.5;
    ctx.stroke();
    const ux = tx / td;
    const uy = ty / td;
    ctx.beginPath();
    ctx.moveTo(ex, ey);
    ctx.lineTo(ex - ux * 9 - uy * 5, ey - uy * 9 + ux * 5);
    ctx.lineTo(ex - ux * 9 + uy * 5, ey - uy * 9 - ux * 5);
    ctx.closePath();
    ctx.fillStyle = LINK;
    ctx.fill();
    // the count at the bow's apex
    const mx = (ox + 2 * cx + ex) / 4;
    const my = (oy + 2 * cy + ey) / 4;
    const text = l.packets > 99_999 ? `${Math.round(l.packets / 1000)}k` : String(l.packets);
    const w = ctx.measureText(text).width + 8;
    ctx.fillStyle = '#fff';
    ctx.fillRect(mx - w / 2, my - 8, w, 16);
    ctx.strokeStyle = LINK;
    ctx.lineWidth = 1;
    ctx.strokeRect(mx - w / 2 + 0.5, my - 7.5, w - 1, 15);
    ctx.fillStyle = LINK;
    ctx.fillText(text, mx, my + 0.5);
  }
  ctx.globalAlpha = 1;
  ctx.textAlign = 'start';
}

/** A trust state's look on a small canvas (the legend): a neutral cell with that border. */
export function drawTrustSample(ctx: CanvasRenderingContext2D, t: number, size: number, dpr: number): void {
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, size, size);
  ctx.globalAlpha = t === 3 ? FADED : 1;
  ctx.fillStyle = '#d9d9d9';
  ctx.fillRect(0, 0, size, size);
  ctx.globalAlpha = 1;
  strokeBucket(ctx, { cell: size, x: new Float32Array([0]), y: new Float32Array([0]) } as MapLayout, [0], t);
}
