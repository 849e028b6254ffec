/**
 * The draft's YAML: a textarea with a gutter of line numbers, lines with a problem marked in the gutter, each
 * problem written next to its line (line:column, code, message) and listed under the editor; picking one moves
 * the caret to its place. Lines never wrap, so that the gutter and the notes stay level with the text.
 */
import { forwardRef, useImperativeHandle, useLayoutEffect, useMemo, useRef, useState } from 'react';
import type { DiagnosticV1 } from './model.ts';
import { DiagnosticList } from './common.tsx';

export interface YamlEditorHandle {
  /** put the caret at line:column (1-based) and show it */
  goTo: (line: number, column: number) => void;
  focus: () => void;
}

interface Props {
  id: string;
  value: string;
  onChange: (text: string) => void;
  diagnostics: readonly DiagnosticV1[];
  readOnly?: boolean;
  label: string;
}

const LINE_PX = 20;
const PAD_PX = 6;

export const YamlEditor = forwardRef<YamlEditorHandle, Props>(function YamlEditor({ id, value, onChange, diagnostics, readOnly, label }, ref) {
  const area = useRef<HTMLTextAreaElement>(null);
  const [scroll, setScroll] = useState({ top: 0 });
  const lines = useMemo(() => value.split('\n'), [value]);
  const byLine = useMemo(() => {
    const m = new Map<number, DiagnosticV1[]>();
    for (const d of diagnostics) m.set(d.line, [...(m.get(d.line) ?? []), d]);
    return m;
  }, [diagnostics]);

  const goTo = (line: number, column: number) => {
    const t = area.current;
    if (!t) return;
    let offset = 0;
    const ls = t.value.split('\n');
    for (let i = 0; i < Math.min(line - 1, ls.length); i++) offset += ls[i].length + 1;
    offset += Math.max(0, Math.min(column - 1, (ls[line - 1] ?? '').length));
    t.focus();
    t.setSelectionRange(offset, offset);
    t.scrollTop = Math.max(0, (line - 1) * LINE_PX - t.clientHeight / 3);
    setScroll({ top: t.scrollTop });
  };
  useImperativeHandle(ref, () => ({ goTo, focus: () => area.current?.focus() }));

  // keep the gutter level when the text shrinks under the scroll position
  useLayoutEffect(() => {
    if (area.current && area.current.scrollTop !== scroll.top) setScroll({ top: area.current.scrollTop });
  }, [value, scroll.top]);

  const listId = `${id}-diags`;
  const errors = diagnostics.filter((d) => d.severity === 'error');
  return (
    <div className="pol-yaml">
      <label htmlFor={id} className="pol-yaml-label">{label}</label>
      <div className="pol-yaml-box" style={{ ['--lh' as string]: `${LINE_PX}px`, ['--pad' as string]: `${PAD_PX}px` }}>
        <div className="pol-gutter" aria-hidden="true">
          <div style={{ transform: `translateY(${-scroll.top}px)` }}>
            {lines.map((_, i) => {
              const ds = byLine.get(i + 1);
              const bad = ds?.some((d) => d.severity === 'error');
              return <div key={i} className={bad ? 'pol-ln pol-ln-bad' : ds ? 'pol-ln pol-ln-warn' : 'pol-ln'} data-line={i + 1} data-error={bad ? 'true' : undefined}>{bad ? '✖ ' : ds ? '! ' : ''}{i + 1}</div>;
            })}
          </div>
        </div>
        <div className="pol-textwrap">
        <div className="pol-linebg" aria-hidden="true">
          <div style={{ transform: `translateY(${-scroll.top}px)` }}>
            {[...byLine].map(([line, ds]) => <div key={line} className={ds.some((d) => d.severity === 'error') ? 'pol-bg-bad' : 'pol-bg-warn'} style={{ top: PAD_PX + (line - 1) * LINE_PX }} />)}
          </div>
        </div>
        <textarea
          id={id}
          ref={area}
          className="pol-textarea"
          value={value}
          wrap="off"
          spellCheck={false}
          autoCapitalize="off"
          autoCorrect="off"
          readOnly={readOnly}
          aria-invalid={errors.length > 0 ? true : undefined}
          aria-describedby={diagnostics.length > 0 ? listId : undefined}
          onChange={(e) => onChange(e.target.value)}
          onScroll={(e) => setScroll({ top: e.currentTarget.scrollTop })}
        />
        </div>
        <div className="pol-notes" aria-hidden="true">
          <div style={{ transform: `translateY(${-scroll.top}px)` }}>
            {[...byLine].map(([line, ds]) => (
              <div key={line} className={ds.some((d) => d.severity === 'error') ? 'pol-note pol-note-bad' : 'pol-note'} style={{ top: PAD_PX + (line - 1) * LINE_PX }} data-line={line} title={ds.map((d) => `${d.line}:${d.column} ${d.code}: ${d.message}`).join('\n')}>
                ← {ds[0].line}:{ds[0].column} {ds[0].code}: {ds[0].message}{ds.length > 1 ? ` (+${ds.length - 1} more)` : ''}
              </div>
            ))}
          </div>
        </div>
      </div>
      <DiagnosticList id={listId} diagnostics={diagnostics} onPick={(d) => goTo(d.line, d.column)} title={diagnostics.length ? `${errors.length} error${errors.length === 1 ? '' : 's'}${diagnostics.length > errors.length ? `, ${diagnostics.length - errors.length} warning${diagnostics.length - errors.length === 1 ? '' : 's'}` : ''} (pick one to go to its place):` : undefined} />
    </div>
  );
});
