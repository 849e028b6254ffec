/**
 * Sign-in and the session. A token or a user's name and password opens a cookie session (HttpOnly: the page never
 * sees its secret, only the CSRF token). When the controller answers 401 later (the session expired, or was ended
 * elsewhere), sign-in is shown over the page, which stays mounted: an unsaved draft is still there afterwards.
 */
import { createContext, useContext, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import type { Role } from '../../src/api/types.ts';
import { ApiError, api, checkSession, del, onSessionExpired, setCsrf } from './api.ts';

export interface Session {
  actor: string;
  role: Role;
  expiresAt?: string;
}

interface SessionApi {
  session: Session;
  signOut: () => Promise<void>;
  /** the role may do what `min` may */
  can: (min: 'viewer' | 'operator' | 'admin') => boolean;
}

const RANK: Record<Role, number> = { agent: 0, viewer: 1, operator: 2, admin: 3 };
const Ctx = createContext<SessionApi | null>(null);

export function useSession(): SessionApi {
  const s = useContext(Ctx);
  if (s === null) throw new Error('useSession outside <SessionGate>');
  return s;
}

interface SessionAnswer { actor: string; role: Role; csrfToken?: string; expiresAt?: string }

export function SignIn({ onDone, expired }: { onDone: (s: SessionAnswer) => void; expired?: boolean }) {
  const [mode, setMode] = useState<'password' | 'token'>('password');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    if (mode === 'password' && (user.trim() === '' || password === '')) return setError('Enter your user name and password.');
    if (mode === 'token' && token.trim() === '') return setError('Enter a token.');
    setBusy(true);
    try {
      const s = await api<SessionAnswer>('POST', '/api/v1/session', mode === 'token' ? { token: token.trim() } : { user: user.trim(), password });
      onDone(s);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'The controller cannot be reached.');
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="signin-backdrop">
      <form className="signin" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">hueguard</h1>
        {expired && <p role="status" className="notice">Your session has ended. Sign in again: the page, and any unsaved draft, stay as they were.</p>}
        <div role="tablist" aria-label="Sign in with" className="tabs">
          <button type="button" role="tab" aria-selected={mode === 'password'} onClick={() => setMode('password')}>User and password</button>
          <button type="button" role="tab" aria-selected={mode === 'token'} onClick={() => setMode('token')}>Token</button>
        </div>
        {mode === 'password' ? (
          <>
            <label>User <input name="user" autoComplete="username" value={user} onChange={(e) => setUser(e.target.value)} autoFocus /></label>
            <label>Password <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} /></label>
          </>
        ) : (
          <label>Token <input name="token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} autoFocus /></label>
        )}
        {error && <p role="alert" className="error">{error}</p>}
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        <p className="hint">The first start of <code>hueguard serve</code> prints an admin token.</p>
      </form>
    </div>
  );
}

/** Renders its children once signed in; sign-in otherwise (and over them when the session ends). */
export function SessionGate({ children, onSignedIn, onSignedOut }: { children: ReactNode; onSignedIn: () => void; onSignedOut: () => void }) {
  const [session, setSession] = useState<Session | null>(null);
  const [checked, setChecked] = useState(false);
  const [expired, setExpired] = useState(false);

  const accept = (s: SessionAnswer) => {
    setCsrf(s.csrfToken ?? null);
    setSession({ actor: s.actor, role: s.role, expiresAt: s.expiresAt });
    setExpired(false);
    // (again after an expired session: the event stream ended with it)
    onSignedIn();
  };

  useEffect(() => {
    api<SessionAnswer>('GET', '/api/v1/session').then(accept, () => {}).finally(() => setChecked(true));
    return onSessionExpired(() => setExpired(true));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // at the session's end, ask: sign-in comes over the page by itself, not at the next click
  useEffect(() => {
    if (!session?.expiresAt || expired) return;
    const ms = Date.parse(session.expiresAt) - Date.now() + 500;
    const t = setTimeout(() => void checkSession().catch(() => {}), Math.min(Math.max(ms, 0), 2 ** 31 - 1));
    return () => clearTimeout(t);
  }, [session?.expiresAt, expired]);

  if (!checked) return <p className="loading">Loading…</p>;
  if (session === null) return <SignIn onDone={accept} />;
  const value: SessionApi = {
    session,
    can: (min) => RANK[session.role] >= RANK[min],
    signOut: async () => {
      await del('/api/v1/session').catch(() => {});
      setCsrf(null);
      setSession(null);
      onSignedOut();
    },
  };
  return (
    <Ctx.Provider value={value}>
      {children}
      {expired && <SignIn expired onDone={accept} />}
    </Ctx.Provider>
  );
}
