/**
 * The console's frame: sign-in, the navigation, and one view per hash route (`#/`, `#/vm/NAME`, `#/whatif`,
 * `#/policy`, `#/audit`), so that every view has an address to share and the back button works.
 */
import { Link, Route, Router, Switch, useLocation } from 'wouter';
import { useHashLocation } from 'wouter/use-hash-location';
import { startFleet, stopFleet, useFleet } from './fleet.ts';
import { SessionGate, useSession } from './session.tsx';
import { AuditView } from './views/audit.tsx';
import { MapView } from './views/map.tsx';
import { PolicyView } from './views/policy.tsx';
import { VmPage } from './views/vm.tsx';
import { WhatIfView } from './views/whatif.tsx';

const NAV = [
  { href: '/', label: 'Fleet map' },
  { href: '/whatif', label: 'What-if' },
  { href: '/policy', label: 'Policy' },
  { href: '/audit', label: 'Audit' },
];

function Frame() {
  const { session, signOut } = useSession();
  const fleet = useFleet();
  const [location] = useLocation();
  const current = (href: string) => (href === '/' ? location === '/' : location.startsWith(href));
  return (
    <>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <header className="top">
        <span className="brand">hueguard</span>
        <nav aria-label="Views">
          {NAV.map((n) => <Link key={n.href} href={n.href} aria-current={current(n.href) ? 'page' : undefined}>{n.label}</Link>)}
        </nav>
        <span className="status" role="status" aria-live="polite" data-live={fleet.live ? 'yes' : 'no'}>
          {fleet.live ? '● live' : '○ reconnecting'}{fleet.policy ? ` · policy v${fleet.policy.version}` : ' · no policy published'}
        </span>
        <span className="who">{session.actor} <em>({session.role})</em></span>
        <button type="button" onClick={() => void signOut()}>Sign out</button>
      </header>
      {fleet.error && <p role="alert" className="error banner">The controller answered: {fleet.error}</p>}
      <main id="main" tabIndex={-1}>
        <Switch>
          <Route path="/"><MapView /></Route>
          <Route path="/vm/:name">{(p) => <VmPage name={decodeURIComponent(p.name)} />}</Route>
          <Route path="/whatif"><WhatIfView /></Route>
          <Route path="/policy" nest><PolicyView /></Route>
          <Route path="/audit"><AuditView /></Route>
          <Route><p>No such view. <Link href="/">Back to the fleet map</Link></p></Route>
        </Switch>
      </main>
    </>
  );
}

export function App() {
  return (
    <Router hook={useHashLocation}>
      <SessionGate onSignedIn={() => void startFleet()} onSignedOut={stopFleet}>
        <Frame />
      </SessionGate>
    </Router>
  );
}
