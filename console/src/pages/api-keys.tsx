/** API keys (administrators): create with scopes (the key is shown once), list, revoke. */
import { useState } from 'preact/hooks';
import { api, query, type Page } from '../api.ts';
import {
  Copyable,
  EmptyState,
  ErrorNotice,
  ScrollableTable,
  Field,
  Loading,
  PageHeader,
  Status,
  SuccessNotice,
  When,
  useLoad,
} from '../ui.tsx';

interface KeyView {
  id: string;
  label: string;
  scopes: string[];
  status: 'active' | 'revoked' | 'expired';
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

const SCOPES = [
  { value: 'read', hint: 'see patients, relationships, providers, the audit log' },
  { value: 'write', hint: 'also change them' },
  { value: 'admin', hint: 'also manage keys and providers' },
];

export function ApiKeys() {
  const [after, setAfter] = useState<string | null>(null);
  const list = useLoad(() => api<Page<KeyView>>('GET', `/v1/api-keys${query({ after, limit: 50 })}`), [after]);
  const [created, setCreated] = useState<(KeyView & { key: string }) | null>(null);
  const [label, setLabel] = useState('');
  const [scopes, setScopes] = useState<string[]>(['read']);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);

  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setMessage(null);
    try {
      setCreated(await api<KeyView & { key: string }>('POST', '/v1/api-keys', { label: label.trim(), scopes }));
      setLabel('');
      list.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const revoke = async (key: KeyView) => {
    setError(null);
    try {
      await api('DELETE', `/v1/api-keys/${key.id}`);
      setMessage(`Key ${key.label} revoked: it stops working at once.`);
      list.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const toggle = (scope: string) => setScopes(scopes.includes(scope) ? scopes.filter((value) => value !== scope) : [...scopes, scope]);

  return (
    <section>
      <PageHeader title="API keys">Keys for the apps that use this Neuron's REST API (booking, records, reporting).</PageHeader>
      <form class="card form-grid" onSubmit={create} aria-label="Create an API key">
        <Field label="Label" hint="Who uses it, for example booking-app. Letters, digits, . _ @ -">
          <input
            required
            maxLength={64}
            pattern="[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}"
            value={label}
            onInput={(event) => setLabel(event.currentTarget.value)}
          />
        </Field>
        <fieldset class="field">
          <legend class="field-label">Scopes</legend>
          {SCOPES.map((scope) => (
            <label key={scope.value} class="check">
              <input type="checkbox" checked={scopes.includes(scope.value)} onChange={() => toggle(scope.value)} />{' '}
              <span>
                <strong>{scope.value}</strong>: {scope.hint}
              </span>
            </label>
          ))}
        </fieldset>
        <div class="actions">
          <button type="submit" class="button button-primary" disabled={scopes.length === 0}>
            Create key
          </button>
        </div>
      </form>
      <ErrorNotice error={error} onDismiss={() => setError(null)} />
      {message && <SuccessNotice>{message}</SuccessNotice>}
      {created && (
        <section class="card card-highlight" aria-label="New API key">
          <h2>Key for {created.label}</h2>
          <p>
            <strong>Shown only now.</strong> Store it in the app's settings; the Neuron keeps only a hash of it.
          </p>
          <Copyable label="API key" value={created.key} testId="api-key" />
          <button type="button" class="button button-small" onClick={() => setCreated(null)}>
            I have stored it
          </button>
        </section>
      )}
      <ErrorNotice error={list.error} />
      {list.loading && list.data === null && <Loading />}
      {list.data !== null && list.data.items.length === 0 && (
        <EmptyState title="No API keys">Create one above for each app that should reach this Neuron.</EmptyState>
      )}
      {list.data !== null && list.data.items.length > 0 && (
        <ScrollableTable label="API keys (scrolls sideways on a narrow screen)">
          <table>
            <caption class="visually-hidden">API keys</caption>
            <thead>
              <tr>
                <th scope="col">Label</th>
                <th scope="col">Scopes</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((key) => (
                <tr key={key.id}>
                  <td data-label="Label">
                    {key.label}
                    <br />
                    <code class="muted">{key.id}</code>
                  </td>
                  <td data-label="Scopes">{key.scopes.join(', ')}</td>
                  <td data-label="Status">
                    <Status value={key.status} />
                  </td>
                  <td data-label="Created">
                    <When at={key.created_at} />
                  </td>
                  <td data-label="Last used">
                    <When at={key.last_used_at} />
                  </td>
                  <td data-label="">
                    {key.status === 'active' && (
                      <button
                        type="button"
                        class="button button-small button-danger"
                        onClick={() => revoke(key)}
                        aria-label={`Revoke ${key.label}`}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollableTable>
      )}
      {list.data?.next && (
        <button type="button" class="button" onClick={() => setAfter(list.data?.next ?? null)}>
          Next page
        </button>
      )}
    </section>
  );
}
