/**
 * How a color of the policy is drawn. Hues from the Okabe–Ito palette (distinguishable with every common form of
 * color blindness) and, since a hue must never be the only cue, a pattern too, and its name in the legend and on
 * hover. A color named like one of the palette's hues (blue, red, green, orange, yellow, purple, sky…) takes that
 * hue, so that "blue" is drawn blue; the others take the hues left, in the policy's order; color i of the policy
 * takes pattern i mod 6. An isolated VM is grey and cross-hatched: no color has that look.
 */
export const HUES = ['#E69F00', '#56B4E9', '#009E73', '#F0E442', '#0072B2', '#D55E00', '#CC79A7'] as const;
export const PATTERNS = ['solid', 'stripes', 'dots', 'grid', 'rings', 'bars'] as const;
export type PatternKind = (typeof PATTERNS)[number] | 'hatch';

export interface ColorStyle {
  name: string;
  hue: string;
  pattern: PatternKind;
  /** the ink drawn over the hue for its pattern */
  ink: string;
}

export const ISOLATED: ColorStyle = { name: 'isolated', hue: '#9a9a9a', pattern: 'hatch', ink: '#3a3a3a' };
export const NO_COLOR: ColorStyle = { name: 'no color', hue: '#d9d9d9', pattern: 'solid', ink: '#777' };

/** Dark ink on light hues, light ink on dark ones. */
function inkFor(hue: string): string {
  const n = parseInt(hue.slice(1), 16);
  const l = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return l > 140 ? 'rgba(0,0,0,0.55)' : 'rgba(255,255,255,0.75)';
}

/** Words that name (or nearly name) one of the hues, by the hue's index in HUES. */
const NAMED: [RegExp, number][] = [
  [/^(orange|amber|ochre|apricot)$/i, 0],
  [/^(sky|skyblue|sky-blue|cyan|teal|turquoise|aqua|lightblue|light-blue|azure)$/i, 1],
  [/^(green|emerald|lime|olive|mint|jade)$/i, 2],
  [/^(yellow|gold|lemon|sand)$/i, 3],
  [/^(blue|navy|cobalt|indigo|sapphire)$/i, 4],
  [/^(red|crimson|scarlet|vermillion|vermilion|coral|rust|ruby)$/i, 5],
  [/^(purple|violet|magenta|pink|mauve|lilac|plum|rose)$/i, 6],
];

const assignments = new Map<string, Map<string, number>>();

/**
 * The hue index of each color of a policy: named ones first (each hue once), then the rest in order, each taking a
 * hue no color has yet while there is one, and after that a hue no color of its pattern has (color i has pattern
 * i mod 6): up to 42 colors, no two look alike.
 */
function hueIndexes(colors: readonly string[]): Map<string, number> {
  const key = colors.join('\u0000');
  let m = assignments.get(key);
  if (m) return m;
  m = new Map();
  const taken = new Set<number>();
  const pairs = new Set<string>();
  const pattern = (c: string) => Math.max(0, colors.indexOf(c)) % PATTERNS.length;
  for (const c of colors) {
    const hit = NAMED.find(([re, h]) => re.test(c) && !taken.has(h));
    if (hit) {
      m.set(c, hit[1]);
      taken.add(hit[1]);
      pairs.add(`${hit[1]} ${pattern(c)}`);
    }
  }
  let next = 0;
  for (const c of colors) {
    if (m.has(c)) continue;
    const order = HUES.map((_, k) => (next + k) % HUES.length);
    const h = order.find((k) => !taken.has(k)) ?? order.find((k) => !pairs.has(`${k} ${pattern(c)}`)) ?? next % HUES.length;
    next = h + 1;
    m.set(c, h);
    taken.add(h);
    pairs.add(`${h} ${pattern(c)}`);
  }
  if (assignments.size > 50) assignments.clear();
  assignments.set(key, m);
  return m;
}

export function colorStyle(colors: readonly string[] | null, name: string): ColorStyle {
  const list = colors ?? [];
  const i = Math.max(0, list.indexOf(name));
  const hue = HUES[hueIndexes(list).get(name) ?? i % HUES.length];
  return { name, hue, pattern: PATTERNS[i % PATTERNS.length], ink: inkFor(hue) };
}

/** Paint one color's look into a rectangle (canvas). */
export function paint(ctx: CanvasRenderingContext2D, s: ColorStyle, x: number, y: number, w: number, h: number): void {
  ctx.fillStyle = s.hue;
  ctx.fillRect(x, y, w, h);
  if (s.pattern === 'solid') return;
  ctx.save();
  ctx.beginPath();
  ctx.rect(x, y, w, h);
  ctx.clip();
  ctx.strokeStyle = s.ink;
  ctx.fillStyle = s.ink;
  ctx.lineWidth = Math.max(1, Math.min(w, h) / 10);
  const step = Math.max(3, Math.min(w, h) / 3);
  ctx.beginPath();
  switch (s.pattern) {
    case 'stripes':
      for (let d = -h; d < w; d += step) { ctx.moveTo(x + d, y + h); ctx.lineTo(x + d + h, y); }
      break;
    case 'hatch':
      for (let d = -h; d < w; d += step * 0.8) { ctx.moveTo(x + d, y + h); ctx.lineTo(x + d + h, y); ctx.moveTo(x + d, y); ctx.lineTo(x + d + h, y + h); }
      break;
    case 'grid':
      for (let d = step / 2; d < w; d += step) { ctx.moveTo(x + d, y); ctx.lineTo(x + d, y + h); }
      for (let d = step / 2; d < h; d += step) { ctx.moveTo(x, y + d); ctx.lineTo(x + w, y + d); }
      break;
    case 'bars':
      for (let d = step / 2; d < h; d += step) { ctx.moveTo(x, y + d); ctx.lineTo(x + w, y + d); }
      break;
    case 'dots':
      ctx.stroke();
      for (let dx = step / 2; dx < w; dx += step) for (let dy = step / 2; dy < h; dy += step) {
        ctx.moveTo(x + dx + ctx.lineWidth, y + dy);
        ctx.arc(x + dx, y + dy, ctx.lineWidth, 0, Math.PI * 2);
      }
      ctx.fill();
      ctx.restore();
      return;
    case 'rings':
      ctx.arc(x + w / 2, y + h / 2, Math.min(w, h) / 3, 0, Math.PI * 2);
      break;
  }
  ctx.stroke();
  ctx.restore();
}

/** A VM's look: one band per effective color (or grey hatch when isolated, light grey when it has none by policy). */
export function vmStyles(policyColors: readonly string[] | null, labelColors: readonly string[], effective: readonly string[], isolated: boolean): ColorStyle[] {
  if (isolated) return [ISOLATED];
  const shown = effective.length > 0 ? effective : labelColors;
  if (shown.length === 0) return [NO_COLOR];
  return shown.map((c) => colorStyle(policyColors, c));
}
