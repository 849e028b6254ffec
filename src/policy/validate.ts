/**
 * The rules of DESIGN.md §2 that make a policy well-formed, checked on the model.
 *
 * Returns every problem found (never stops at the first), each with the model path of the offending value,
 * so that a reader can turn the path into FILE:LINE:COLUMN.
 */
import { PolicyErrorCode as C, type Diagnostic } from './errors.ts';
import type { ModelPath, Policy } from './model.ts';

function err(code: Diagnostic['code'], message: string, path: ModelPath): Diagnostic {
  return { code, message, severity: 'error', path };
}

/** Reports names given twice in one list; returns the set of names. */
function uniqueNames(
  names: ReadonlyArray<string>,
  what: string,
  pathOf: (i: number) => ModelPath,
  out: Diagnostic[],
): Set<string> {
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (n === '') out.push(err(C.emptyName, `${what} with an empty name`, pathOf(i)));
    else if (seen.has(n)) out.push(err(C.duplicate, `${what} "${n}" is defined twice`, pathOf(i)));
    seen.add(n);
  });
  return seen;
}

/** Every error-severity problem of the policy, in source order of the checks. Pure. */
export function validatePolicy(p: Policy): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (p.name === '') out.push(err(C.emptyName, 'the policy has an empty name', ['name']));
  if (p.name.includes(':')) out.push(err(C.badName, `policy name "${p.name}" contains ':'`, ['name']));
  if (p.version === '') out.push(err(C.badVersion, 'the policy has an empty version', ['version']));
  if (p.from !== undefined) {
    if (p.from.name === '' || p.from.name.includes(':')) {
      out.push(err(C.badName, `the policy it updates has an invalid name "${p.from.name}"`, ['from', 'name']));
    }
    if (p.from.version === '') out.push(err(C.badVersion, 'the policy it updates has an empty version', ['from', 'version']));
  }

  const colors = p.colors === null ? null : uniqueNames(p.colors, 'color', (i) => ['colors', i], out);
  const walls = p.walls === null ? null : uniqueNames(p.walls, 'wall type', (i) => ['walls', i], out);

  // Conflict sets: known, distinct types; map each wall type to the sets it is in.
  uniqueNames(p.conflicts.map((c) => c.name), 'conflict set', (i) => ['conflicts', i, 'name'], out);
  const setsOfWall = new Map<string, number[]>();
  p.conflicts.forEach((c, ci) => {
    if (walls === null) {
      out.push(err(C.unknownWall, `conflict set "${c.name}" in a policy without wall types`, ['conflicts', ci]));
      return;
    }
    const inSet = new Set<string>();
    c.walls.forEach((w, wi) => {
      const path = ['conflicts', ci, 'walls', wi];
      if (!walls.has(w)) out.push(err(C.unknownWall, `conflict set "${c.name}" names unknown wall type "${w}"`, path));
      else if (inSet.has(w)) out.push(err(C.duplicate, `conflict set "${c.name}" lists "${w}" twice`, path));
      else {
        inSet.add(w);
        setsOfWall.set(w, [...(setsOfWall.get(w) ?? []), ci]);
      }
    });
  });

  const labelNames = uniqueNames(p.labels.map((l) => l.name), 'label', (i) => ['labels', i, 'name'], out);
  p.labels.forEach((l, li) => {
    if (l.name.includes(':')) out.push(err(C.badName, `label name "${l.name}" contains ':'`, ['labels', li, 'name']));
    const seenC = new Set<string>();
    l.colors.forEach((c, ci) => {
      const path = ['labels', li, 'colors', ci];
      if (colors === null) out.push(err(C.unknownColor, `label "${l.name}" has color "${c}" but the policy declares no colors`, path));
      else if (!colors.has(c)) out.push(err(C.unknownColor, `label "${l.name}" names unknown color "${c}"`, path));
      else if (seenC.has(c)) out.push(err(C.duplicate, `label "${l.name}" lists color "${c}" twice`, path));
      seenC.add(c);
    });
    const seenW = new Set<string>();
    const firstInSet = new Map<number, string>();
    l.walls.forEach((w, wi) => {
      const path = ['labels', li, 'walls', wi];
      if (walls === null) out.push(err(C.unknownWall, `label "${l.name}" has wall type "${w}" but the policy declares no wall types`, path));
      else if (!walls.has(w)) out.push(err(C.unknownWall, `label "${l.name}" names unknown wall type "${w}"`, path));
      else if (seenW.has(w)) out.push(err(C.duplicate, `label "${l.name}" lists wall type "${w}" twice`, path));
      else {
        for (const ci of setsOfWall.get(w) ?? []) {
          const other = firstInSet.get(ci);
          if (other !== undefined) {
            out.push(err(C.labelConflict,
              `label "${l.name}" holds "${other}" and "${w}", two types of conflict set "${p.conflicts[ci].name}"`, path));
          } else firstInSet.set(ci, w);
        }
      }
      seenW.add(w);
    });
  });

  const resNames = uniqueNames(p.resources.map((r) => r.name), 'resource label', (i) => ['resources', i, 'name'], out);
  p.resources.forEach((r, ri) => {
    if (r.name.includes(':')) out.push(err(C.badName, `resource label name "${r.name}" contains ':'`, ['resources', ri, 'name']));
    const path = ['resources', ri, 'color'];
    if (colors === null) out.push(err(C.unknownColor, `resource label "${r.name}" has color "${r.color}" but the policy declares no colors`, path));
    else if (!colors.has(r.color)) out.push(err(C.unknownColor, `resource label "${r.name}" names unknown color "${r.color}"`, path));
  });

  // The bootstrap label: required unless the policy restricts nothing at all (Xen's NULL policy).
  if (p.host === null || p.host === '') {
    if (p.colors !== null || p.walls !== null || p.labels.length > 0) {
      out.push(err(C.missingBootstrap, 'the policy has no bootstrap (host) label', ['host']));
    }
  } else if (!labelNames.has(p.host)) {
    out.push(err(C.missingBootstrap, `the bootstrap label "${p.host}" is not a label of the policy`, ['host']));
  }

  // Renames: each old name is renamed at most once per kind, and never to itself.
  const checkRenames = (items: ReadonlyArray<{ name: string; from?: string }>, kind: 'labels' | 'resources') => {
    const from = new Set<string>();
    items.forEach((it, i) => {
      if (it.from === undefined) return;
      const path = [kind, i, 'from'];
      if (it.from === '' || it.from.includes(':')) out.push(err(C.badRename, `"${it.name}" is renamed from an invalid name "${it.from}"`, path));
      else if (from.has(it.from)) out.push(err(C.badRename, `"${it.from}" is renamed twice`, path));
      from.add(it.from);
    });
  };
  checkRenames(p.labels, 'labels');
  checkRenames(p.resources, 'resources');
  void resNames;
  return out;
}
