/**
 * Small pieces every view uses: a color's swatch (its hue and pattern, the same drawing as the map), a label's
 * colors as named chips, a trust badge (a word and a border style, never only a color), and a field error.
 * Names from the fleet are only ever React text: never HTML.
 */
import { useEffect, useRef } from 'react';
import type { TrustState } from '../../src/api/types.ts';
import { useFleet } from './fleet.ts';
import { colorStyle, ISOLATED, paint, type ColorStyle } from './palette.ts';

export function Swatch({ style, size = 14 }: { style: ColorStyle; size?: number }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current?.getContext('2d');
    if (c) paint(c, style, 0, 0, size, size);
  }, [style.hue, style.pattern, style.ink, size]);
  return <canvas ref={ref} className="swatch" width={size} height={size} aria-hidden="true" data-pattern={style.pattern} />;
}

/** A color by name, drawn as the published policy's palette draws it (or `palette`'s: a draft's colors). */
export function ColorChip({ color, palette }: { color: string; palette?: readonly string[] | null }) {
  const { policy } = useFleet();
  const s = colorStyle(palette !== undefined ? palette : (policy?.doc.colors ?? null), color);
  return <span className="chip" data-color={color}><Swatch style={s} />{color}</span>;
}

export function ColorChips({ colors, isolated }: { colors: readonly string[]; isolated?: string }) {
  if (isolated) return <span className="chip" title={isolated}><Swatch style={ISOLATED} />isolated: {isolated}</span>;
  if (colors.length === 0) return <span className="muted">no color</span>;
  return <>{colors.map((c) => <ColorChip key={c} color={c} />)}</>;
}

const TRUST_TEXT: Record<TrustState, string> = {
  trusted: 'trusted',
  unverified: 'unverified',
  untrusted: 'untrusted',
  unreachable: 'unreachable',
};

export function TrustBadge({ state }: { state: TrustState }) {
  return <span className={`trust trust-${state}`} data-trust={state}>{TRUST_TEXT[state]}</span>;
}

export function FieldError({ id, message }: { id: string; message?: string | null }) {
  if (!message) return null;
  return <p id={id} className="field-error" role="alert">{message}</p>;
}

/** `#/vm/NAME` */
export const vmHref = (name: string) => `/vm/${encodeURIComponent(name)}`;
