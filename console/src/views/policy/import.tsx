/**
 * Import a Xen ACM XML policy (any generation) as a new draft: a file (read in the browser with File.text()) or
 * pasted text, and for a Xen 3.0.0 policy its label template. The new draft opens; the controller's diagnostics
 * (with the line in the file they name) are shown otherwise.
 */
import { useState, type ChangeEvent, type FormEvent } from 'react';
import { useLocation } from 'wouter';
import { post } from '../../api.ts';
import { FieldError } from '../../ui.tsx';
import { DiagnosticList, diagnosticsOf, errorText, type Draft } from './common.tsx';
import type { DiagnosticV1 } from './model.ts';

const MAX = 16 * 1024 * 1024;

export function ImportView() {
  const [, navigate] = useLocation();
  const [text, setText] = useState('');
  const [fileName, setFileName] = useState<string | null>(null);
  const [labels, setLabels] = useState('');
  const [labelsName, setLabelsName] = useState<string | null>(null);
  const [errors, setErrors] = useState<{ text?: string; labels?: string }>({});
  const [result, setResult] = useState<{ message: string; diagnostics: DiagnosticV1[] } | null>(null);
  const [busy, setBusy] = useState(false);
  const [templateOpen, setTemplateOpen] = useState(false);

  async function read(e: ChangeEvent<HTMLInputElement>, into: (s: string) => void, name: (s: string | null) => void, key: 'text' | 'labels') {
    const f = e.target.files?.[0];
    if (!f) return;
    if (f.size > MAX) {
      setErrors((x) => ({ ...x, [key]: `${f.name} is larger than 16 MiB, more than the controller reads.` }));
      return;
    }
    into(await f.text());
    name(f.name);
    setErrors((x) => ({ ...x, [key]: undefined }));
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setResult(null);
    const errs: { text?: string; labels?: string } = {};
    const t = text.trim();
    if (t === '') errs.text = 'Choose a Xen ACM XML file or paste its text.';
    else if (!t.startsWith('<')) errs.text = 'This is not XML: a Xen ACM policy starts with “<?xml” or “<SecurityPolicyDefinition”. (Native YAML: create a draft instead.)';
    const l = labels.trim();
    if (l !== '' && !l.startsWith('<')) errs.labels = 'The label template is Xen XML too (a *-security_label_template.xml file).';
    setErrors(errs);
    if (errs.text || errs.labels) {
      document.getElementById(errs.text ? 'pol-import-text' : 'pol-import-labels')?.focus();
      return;
    }
    setBusy(true);
    try {
      const d = await post<Draft>('/api/v1/policy/import', l === '' ? { text } : { text, labels });
      navigate(`/drafts/${encodeURIComponent(d.id)}`);
    } catch (err) {
      const diags = diagnosticsOf(err);
      const fileOf = (x: DiagnosticV1) => ({ ...x, file: x.file === 'labels' ? (labelsName ?? 'label template') : (fileName ?? 'pasted text') });
      setResult({ message: `Not imported: ${errorText(err)}`, diagnostics: (diags ?? []).map(fileOf) });
      // a Xen 3.0.0 policy without its labels: the template is what it needs
      if (diags?.some((x) => x.code === 'missing_bootstrap')) setTemplateOpen(true);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-labelledby="pol-import-title">
      <h2 id="pol-import-title">Import a Xen ACM XML policy</h2>
      <p className="muted">Every generation of Xen’s ACM policies (Xen 3.0.0 to 4.1) becomes a new draft in native YAML, names, conflict sets and renames kept. Nothing is published until you publish the draft.</p>
      <form onSubmit={(e) => void submit(e)} noValidate className="pol-import">
        <label className="pol-field">Policy file (*-security_policy.xml)
          <input type="file" accept=".xml,application/xml,text/xml" onChange={(e) => void read(e, setText, setFileName, 'text')} />
        </label>
        <label className="pol-field">…or its text
          <textarea id="pol-import-text" rows={10} className="mono" value={text} onChange={(e) => { setText(e.target.value); setFileName(null); }}
            aria-invalid={errors.text ? true : undefined} aria-describedby={errors.text ? 'pol-import-text-err' : undefined} spellCheck={false} />
        </label>
        {fileName && <p className="muted">Read {fileName} ({text.length.toLocaleString()} characters).</p>}
        <FieldError id="pol-import-text-err" message={errors.text} />
        <details open={templateOpen} onToggle={(e) => setTemplateOpen(e.currentTarget.open)}>
          <summary>Label template (Xen 3.0.0 only)</summary>
          <label className="pol-field">Label template file (*-security_label_template.xml)
            <input type="file" accept=".xml,application/xml,text/xml" onChange={(e) => void read(e, setLabels, setLabelsName, 'labels')} />
          </label>
          <label className="pol-field">…or its text
            <textarea id="pol-import-labels" rows={6} className="mono" value={labels} onChange={(e) => { setLabels(e.target.value); setLabelsName(null); }}
              aria-invalid={errors.labels ? true : undefined} aria-describedby={errors.labels ? 'pol-import-labels-err' : undefined} spellCheck={false} />
          </label>
          <FieldError id="pol-import-labels-err" message={errors.labels} />
        </details>
        <button type="submit" className="primary" disabled={busy}>{busy ? 'Importing…' : 'Import as a new draft'}</button>
        {result && (
          <div role="alert">
            <p className="error">{result.message}</p>
            <DiagnosticList diagnostics={result.diagnostics} />
          </div>
        )}
      </form>
    </section>
  );
}
