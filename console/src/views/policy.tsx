/**
 * The policy view (`#/policy`): the published policy at a glance with the drafts (`/`), one draft's editor with
 * its preview and publish (`/drafts/ID`), the history with diffs and revert (`/history`, `/history/N`,
 * `/history/diff/A/B`) and the Xen import (`/import`). What the page offers follows the role: a viewer reads,
 * an operator also previews, an admin edits, publishes, reverts and imports.
 */
import { Link, Route, Switch, useLocation } from 'wouter';
import { useSession } from '../session.tsx';
import { setFlash, useFlash } from './policy/common.tsx';
import { DraftEditor } from './policy/draft-editor.tsx';
import { HistoryList, VersionDiff, VersionPage } from './policy/history.tsx';
import { ImportView } from './policy/import.tsx';
import { Overview } from './policy/overview.tsx';
import './policy/policy.css';

export function PolicyView() {
  const { can } = useSession();
  const [location] = useLocation();
  const flash = useFlash(location);
  const tabs = [
    { href: '/', label: 'Overview', on: location === '/' || location.startsWith('/drafts') },
    { href: '/history', label: 'History', on: location.startsWith('/history') },
    ...(can('admin') ? [{ href: '/import', label: 'Import Xen ACM XML', on: location.startsWith('/import') }] : []),
  ];
  return (
    <div className="pol">
      <h1>Policy</h1>
      <nav aria-label="Policy" className="pol-nav">
        {tabs.map((t) => <Link key={t.href} href={t.href} aria-current={t.on ? 'page' : undefined}>{t.label}</Link>)}
      </nav>
      {flash && (
        <p role="status" className="notice pol-flash">
          {flash} <button type="button" onClick={() => setFlash(null)}>Dismiss</button>
        </p>
      )}
      <Switch>
        <Route path="/"><Overview /></Route>
        <Route path="/drafts/:id">{(p) => <DraftEditor key={p.id} id={decodeURIComponent(p.id)} />}</Route>
        <Route path="/history/diff/:a/:b">{(p) => <VersionDiff from={Number(p.a)} to={Number(p.b)} />}</Route>
        <Route path="/history/:n">{(p) => <VersionPage n={Number(p.n)} />}</Route>
        <Route path="/history"><HistoryList /></Route>
        <Route path="/import">{can('admin') ? <ImportView /> : <p>Only an admin imports policies.</p>}</Route>
        <Route><p>No such policy page. <Link href="/">Back to the policy</Link></p></Route>
      </Switch>
    </div>
  );
}
