/**
 * Providers: the practice's roster. Add, approve (which issues the provider CareAgent's credential,
 * shown exactly once), suspend and remove.
 */
import { useState } from 'preact/hooks';
import { api, query, type Page } from '../api.ts';
import {
  Copyable,
  EmptyState,
  ErrorNotice,
  Field,
  Loading,
  PageHeader,
  ReasonAction,
  Status,
  ScrollableTable,
  SuccessNotice,
  When,
  useLoad,
} from '../ui.tsx';

interface ProviderView {
  npi: string;
  name: string;
  provider_types: string[];
  specialty: string | null;
  status: 'pending' | 'active' | 'suspended';
  provider_endpoint: string | null;
  last_seen_at: string | null;
  registry_state: string;
  created_at: string;
}

interface Approval {
  provider: ProviderView;
  credential: string;
  credential_id: string;
  neuron_public_key: string;
}

const PROVIDER_TYPES = [
  'physician',
  'nursing',
  'pharmacy',
  'dental',
  'behavioral_mental_health',
  'laboratory',
  'radiology_imaging',
  'therapy_rehabilitation',
  'emergency_medical',
  'other',
];

/** `canManage`: the operator's role may change the roster (admin); front-desk operators see it read-only. */
export function Providers(props: { canManage: boolean }) {
  const [status, setStatus] = useState('');
  const [after, setAfter] = useState<string | null>(null);
  const list = useLoad(() => api<Page<ProviderView>>('GET', `/v1/providers${query({ status, after, limit: 50 })}`), [status, after]);
  const [approval, setApproval] = useState<Approval | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [adding, setAdding] = useState(false);

  const run = async (work: () => Promise<void>) => {
    setError(null);
    setMessage(null);
    try {
      await work();
      list.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const approve = (npi: string, rotate: boolean) =>
    run(async () => {
      setApproval(await api<Approval>('POST', `/v1/providers/${npi}/approve`, rotate ? { rotate: true } : {}));
    });

  return (
    <section>
      <PageHeader title="Providers">
        The clinicians patients can connect to through this Neuron.
        {!props.canManage && ' Administrators add, approve, suspend and remove them.'}
      </PageHeader>
      <div class="toolbar">
        <Field label="Status">
          <select
            value={status}
            onChange={(event) => {
              setStatus(event.currentTarget.value);
              setAfter(null);
            }}
          >
            <option value="">Any status</option>
            <option value="pending">Pending approval</option>
            <option value="active">Active</option>
            <option value="suspended">Suspended</option>
          </select>
        </Field>
        {props.canManage && (
          <button type="button" class="button button-primary" aria-expanded={adding} onClick={() => setAdding(!adding)}>
            {adding ? 'Close the form' : 'Add a provider'}
          </button>
        )}
      </div>
      {adding && (
        <AddProvider
          onAdded={(provider) => {
            setAdding(false);
            setMessage(`${provider.name} added. Approve them to issue their CareAgent's credential.`);
            list.reload();
          }}
        />
      )}
      <ErrorNotice error={error} onDismiss={() => setError(null)} />
      {message && <SuccessNotice>{message}</SuccessNotice>}
      {approval && (
        <section class="card card-highlight" aria-label="New credential">
          <h2>Credential for {approval.provider.name}</h2>
          <p>
            <strong>Shown only now.</strong> Give it to the provider's CareAgent with the Neuron's public key; the Neuron keeps only a
            digest.
          </p>
          <Copyable label="Credential" value={approval.credential} testId="credential" />
          <Copyable label="Neuron public key" value={approval.neuron_public_key} />
          <button type="button" class="button button-small" onClick={() => setApproval(null)}>
            I have stored it
          </button>
        </section>
      )}
      {list.loading && list.data === null && <Loading />}
      <ErrorNotice error={list.error} />
      {list.data !== null && list.data.items.length === 0 && (
        <EmptyState title="No providers">
          {status !== ''
            ? 'No provider has this status.'
            : props.canManage
              ? 'Add your first provider with the button above, or let a provider CareAgent register itself and approve it here.'
              : 'An administrator adds providers, or approves those whose CareAgents register themselves.'}
        </EmptyState>
      )}
      {list.data !== null && list.data.items.length > 0 && (
        <ScrollableTable label="Providers (scrolls sideways on a narrow screen)">
          <table>
            <caption class="visually-hidden">Providers</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">NPI</th>
                <th scope="col">Status</th>
                <th scope="col">Last seen</th>
                {props.canManage && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((provider) => (
                <tr key={provider.npi}>
                  <td data-label="Name">
                    {provider.name}
                    <br />
                    <span class="muted">{provider.specialty ?? provider.provider_types.join(', ')}</span>
                  </td>
                  <td data-label="NPI">
                    <code>{provider.npi}</code>
                  </td>
                  <td data-label="Status">
                    <Status value={provider.status} />
                  </td>
                  <td data-label="Last seen">
                    <When at={provider.last_seen_at} />
                  </td>
                  {props.canManage && (
                    <td data-label="Actions">
                      <div class="actions">
                        {provider.status !== 'active' && (
                          <button
                            type="button"
                            class="button button-small button-primary"
                            onClick={() => approve(provider.npi, false)}
                            aria-label={`Approve ${provider.name}`}
                          >
                            Approve
                          </button>
                        )}
                        {provider.status === 'active' && (
                          <button
                            type="button"
                            class="button button-small"
                            onClick={() => approve(provider.npi, true)}
                            aria-label={`New credential for ${provider.name}`}
                          >
                            New credential
                          </button>
                        )}
                        {provider.status !== 'suspended' && (
                          <ReasonAction
                            label="Suspend"
                            onSubmit={(reason) =>
                              run(async () => {
                                await api('POST', `/v1/providers/${provider.npi}/suspend`, { reason });
                                setMessage(`${provider.name} suspended; their credential no longer works.`);
                              })
                            }
                          />
                        )}
                        <RemoveButton
                          name={provider.name}
                          onConfirm={() =>
                            run(async () => {
                              await api('DELETE', `/v1/providers/${provider.npi}`);
                              setMessage(`${provider.name} removed.`);
                            })
                          }
                        />
                      </div>
                    </td>
                  )}
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

function RemoveButton(props: { name: string; onConfirm: () => void }) {
  const [asking, setAsking] = useState(false);
  if (!asking)
    return (
      <button type="button" class="button button-small button-danger" onClick={() => setAsking(true)} aria-label={`Remove ${props.name}`}>
        Remove
      </button>
    );
  return (
    <span class="confirm">
      <span>Remove {props.name}?</span>
      <button
        type="button"
        class="button button-small button-danger"
        onClick={() => {
          setAsking(false);
          props.onConfirm();
        }}
      >
        Yes, remove
      </button>
      <button type="button" class="button button-small button-quiet" onClick={() => setAsking(false)}>
        Keep
      </button>
    </span>
  );
}

function AddProvider(props: { onAdded: (provider: ProviderView) => void }) {
  const [form, setForm] = useState({ npi: '', name: '', type: 'physician', specialty: '', endpoint: '' });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const set = (key: keyof typeof form) => (event: Event) => setForm({ ...form, [key]: (event.currentTarget as HTMLInputElement).value });
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = {
        npi: form.npi.trim(),
        name: form.name.trim(),
        provider_types: [form.type],
        ...(form.specialty.trim() === '' ? {} : { specialty: form.specialty.trim() }),
        ...(form.endpoint.trim() === '' ? {} : { provider_endpoint: form.endpoint.trim() }),
      };
      props.onAdded(await api<ProviderView>('POST', '/v1/providers', body));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card form-grid" onSubmit={submit} aria-label="Add a provider">
      <Field label="NPI" hint="Ten digits">
        <input required inputMode="numeric" pattern="[0-9]{10}" value={form.npi} onInput={set('npi')} />
      </Field>
      <Field label="Name">
        <input required maxLength={200} value={form.name} onInput={set('name')} />
      </Field>
      <Field label="Type">
        <select value={form.type} onChange={set('type')}>
          {PROVIDER_TYPES.map((type) => (
            <option key={type} value={type}>
              {type.replaceAll('_', ' ')}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Specialty (optional)">
        <input maxLength={200} value={form.specialty} onInput={set('specialty')} />
      </Field>
      <Field label="CareAgent endpoint" hint="Needed before approval, for example wss://agent.example/provider">
        <input maxLength={2048} value={form.endpoint} onInput={set('endpoint')} />
      </Field>
      <ErrorNotice error={error} />
      <div class="actions">
        <button type="submit" class="button button-primary" disabled={busy}>
          Add provider
        </button>
      </div>
    </form>
  );
}
