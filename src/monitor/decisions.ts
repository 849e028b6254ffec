/**
 * Explained decisions: the four questions of the reference monitor, by name, with the reason and the evidence
 * (which colors matched, which are missing, which conflict set and running label block a start).
 * The compiled hot path (`CompiledPolicy.share` etc.) answers the same questions without the explanation.
 */
import type { CompiledPolicy } from './compile.ts';
import { WallState, type StartAnswer } from './chinese-wall.ts';

export interface ShareAnswer {
  allow: boolean;
  reason: 'common_color' | 'no_common_color' | 'no_ste_component';
  /** the colors both labels hold */
  colors: string[];
}

export interface UseAnswer {
  allow: boolean;
  reason: 'color_match' | 'color_mismatch' | 'no_ste_component';
  /** the resource's color */
  color: string;
}

export interface AuthorizedAnswer {
  allow: boolean;
  reason: 'host_covers' | 'not_authorized' | 'no_ste_component';
  /** the VM's colors the host label lacks */
  missing: string[];
}

export function explainShare(p: CompiledPolicy, a: string, b: string): ShareAnswer {
  const ia = p.label(a);
  const ib = p.label(b);
  if (!p.hasSte) return { allow: true, reason: 'no_ste_component', colors: [] };
  const colors = p.commonColors(ia, ib);
  return { allow: colors.length > 0, reason: colors.length > 0 ? 'common_color' : 'no_common_color', colors };
}

export function explainUse(p: CompiledPolicy, vm: string, resource: string): UseAnswer {
  const iv = p.label(vm);
  const ir = p.resource(resource);
  const color = p.policy.resources[ir].color;
  if (!p.hasSte) return { allow: true, reason: 'no_ste_component', color };
  const allow = p.use(iv, ir);
  return { allow, reason: allow ? 'color_match' : 'color_mismatch', color };
}

export function explainAuthorized(p: CompiledPolicy, host: string, vm: string): AuthorizedAnswer {
  const ih = p.label(host);
  const iv = p.label(vm);
  if (!p.hasSte) return { allow: true, reason: 'no_ste_component', missing: [] };
  const hostColors = new Set(p.colorsOf(ih));
  const missing = p.colorsOf(iv).filter((c) => !hostColors.has(c));
  return { allow: missing.length === 0, reason: missing.length === 0 ? 'host_covers' : 'not_authorized', missing };
}

/** May a VM of `vm`'s label start on a host where VMs of the `running` labels run (in that order)? */
export function explainStart(p: CompiledPolicy, vm: string, running: readonly string[]): StartAnswer {
  const iv = p.label(vm);
  const state = new WallState(p);
  for (const r of running) state.admit(p.label(r));
  return state.check(iv);
}
