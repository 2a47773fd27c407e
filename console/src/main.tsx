/**
 * The operator console: sign in, then the pages of the Neuron. The session lives in an HttpOnly
 * cookie the page cannot read; the page keeps only the operator's name and role and the CSRF token,
 * in memory, and asks GET /v1/console/session for them again after a reload.
 */
import './styles.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, rememberSession, whenUnauthenticated, type Session } from './api.ts';
import { navigate, useCurrentPath } from './router.ts';
import { ErrorNotice, Link, Loading } from './ui.tsx';
import { SignIn } from './pages/sign-in.tsx';
import { Overview } from './pages/overview.tsx';
import { Patients } from './pages/patients.tsx';
import { Relationships } from './pages/relationships.tsx';
import { Providers } from './pages/providers.tsx';
import { ApiKeys } from './pages/api-keys.tsx';
import { Audit } from './pages/audit.tsx';
import { Outbox } from './pages/outbox.tsx';

interface PageEntry {
  path: string;
  label: string;
  adminOnly?: boolean;
  render: (session: Session) => preact.JSX.Element;
}

const PAGES: PageEntry[] = [
  { path: '/', label: 'Overview', render: () => <Overview /> },
  { path: '/patients', label: 'Patients', render: () => <Patients /> },
  { path: '/relationships', label: 'Relationships', render: () => <Relationships /> },
  { path: '/providers', label: 'Providers', render: (session) => <Providers canManage={isAdmin(session)} /> },
  { path: '/api-keys', label: 'API keys', adminOnly: true, render: () => <ApiKeys /> },
  { path: '/audit', label: 'Audit log', render: () => <Audit /> },
  // Dead letters and their retry are admin routes: front-desk operators would only meet a refusal.
  { path: '/outbox', label: 'Outbox', adminOnly: true, render: () => <Outbox /> },
];

function isAdmin(session: Session): boolean {
  return session.operator.role === 'admin';
}

function App() {
  const path = useCurrentPath();
  const [session, setSession] = useState<Session | null | 'loading'>('loading');
  const [ended, setEnded] = useState(false);

  const signedIn = (next: Session | null) => {
    rememberSession(next);
    setSession(next);
  };

  useEffect(() => {
    whenUnauthenticated(() => {
      signedIn(null);
      setEnded(true);
      navigate('/sign-in', { replace: true });
    });
    api<Session>('GET', '/v1/console/session').then(
      (current) => signedIn(current),
      () => signedIn(null),
    );
  }, []);

  useEffect(() => {
    if (session === null && path !== '/sign-in') navigate('/sign-in', { replace: true });
    if (session !== null && session !== 'loading' && path === '/sign-in') navigate('/', { replace: true });
  }, [session, path]);

  if (session === 'loading')
    return (
      <main class="center">
        <Loading />
      </main>
    );
  if (session === null) {
    return (
      <SignIn
        ended={ended}
        onSignedIn={(next) => {
          setEnded(false);
          signedIn(next);
          navigate('/', { replace: true });
        }}
      />
    );
  }
  return <Shell session={session} path={path} onSignedOut={() => signedIn(null)} />;
}

function Shell(props: { session: Session; path: string; onSignedOut: () => void }) {
  const { session, path } = props;
  const [menuOpen, setMenuOpen] = useState(false);
  const menuButton = useRef<HTMLButtonElement>(null);
  const nav = useRef<HTMLElement>(null);
  // On a narrow screen the menu opens over the page: keyboard users land on its first link, and
  // Escape closes it and returns them to the button.
  useEffect(() => {
    if (menuOpen) nav.current?.querySelector('a')?.focus();
  }, [menuOpen]);
  const closeMenuOnEscape = (event: KeyboardEvent) => {
    if (event.key !== 'Escape' || !menuOpen) return;
    setMenuOpen(false);
    menuButton.current?.focus();
  };
  const [error, setError] = useState<unknown>(null);
  const visible = PAGES.filter((page) => !page.adminOnly || isAdmin(session));
  const page = PAGES.find((entry) => entry.path === path);
  useEffect(() => setMenuOpen(false), [path]);
  useEffect(() => {
    document.title = `${page?.label ?? 'Not found'} · Neuron console`;
  }, [page]);

  const signOut = async () => {
    try {
      await api('DELETE', '/v1/console/session');
      props.onSignedOut();
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) props.onSignedOut();
      else setError(failure);
    }
  };

  let content: preact.JSX.Element;
  if (page === undefined) content = <NotFound />;
  else if (page.adminOnly && !isAdmin(session))
    content = <ErrorNotice error={new ApiError(403, { title: 'Forbidden', detail: `The ${page.label} page is for administrators.` })} />;
  else content = page.render(session);

  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">
          <span class="brand-mark" aria-hidden="true">
            N
          </span>{' '}
          Neuron console
        </span>
        <button
          type="button"
          class="button button-quiet menu-button"
          ref={menuButton}
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <div class="operator">
          <span class="operator-name">{session.operator.name}</span>
          <span class="badge">{session.operator.role}</span>
          <button type="button" class="button button-small button-quiet" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <nav id="nav" ref={nav} class={`nav${menuOpen ? ' nav-open' : ''}`} aria-label="Console pages" onKeyDown={closeMenuOnEscape}>
        <ul>
          {visible.map((entry) => (
            <li key={entry.path}>
              <Link to={entry.path} current={entry.path === path}>
                {entry.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" class="content">
        <ErrorNotice error={error} onDismiss={() => setError(null)} />
        {content}
      </main>
    </div>
  );
}

function NotFound() {
  return (
    <section>
      <h1>No such page</h1>
      <p>
        This page does not exist in the console. <Link to="/">Go to the overview</Link>.
      </p>
    </section>
  );
}

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(<App />, root);
}
