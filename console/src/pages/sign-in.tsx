/** Sign-in with an operator's name and password (created with `neuron operator add`). */
import { useState } from 'preact/hooks';
import { api, type Session } from '../api.ts';
import { ErrorNotice, Field } from '../ui.tsx';

export function SignIn(props: { ended: boolean; onSignedIn: (session: Session) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await api<Session>('POST', '/v1/console/session', { name, password });
      setPassword('');
      props.onSignedIn(session);
    } catch (failure) {
      setError(failure);
      setPassword('');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <form class="card sign-in-card" onSubmit={submit} aria-labelledby="sign-in-title">
        <p class="brand">
          <span class="brand-mark" aria-hidden="true">
            N
          </span>{' '}
          Neuron console
        </p>
        <h1 id="sign-in-title">Sign in</h1>
        {props.ended && (
          <p class="notice notice-info" role="status">
            Your session has ended. Sign in again to continue.
          </p>
        )}
        <Field label="Operator name">
          <input name="name" autoComplete="username" required value={name} onInput={(event) => setName(event.currentTarget.value)} />
        </Field>
        <Field label="Password">
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(event) => setPassword(event.currentTarget.value)}
          />
        </Field>
        <ErrorNotice error={error} />
        <button type="submit" class="button button-primary button-wide" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="field-hint">
          No operator yet? On the Neuron's machine run <code>neuron operator add NAME --role admin</code>.
        </p>
      </form>
    </main>
  );
}
