/**
 * Patients: search by name or agent id (the term goes in a POST body, never in a URL), a
 * patient's front-desk profile, their relationships, and block / unblock.
 */
import { useState } from 'preact/hooks';
import { api, type Page } from '../api.ts';
import {
  EmptyState,
  ErrorNotice,
  ScrollableTable,
  Field,
  Loading,
  PageHeader,
  ReasonAction,
  Status,
  SuccessNotice,
  When,
  useLoad,
} from '../ui.tsx';
import type { RelationshipView } from './relationships.tsx';

export interface PatientView {
  patient_agent_id: string;
  patient_endpoint: string;
  profile: { display_name?: string; date_of_birth?: string; preferred_language?: string } | null;
  first_seen_at: string;
  last_seen_at: string;
  updated_at: string;
}

interface BlockView {
  patient_agent_id: string;
  reason: string | null;
  blocked_by: string;
  created_at: string;
}

const BLOCK_PAGES = 10; // how many pages of blocks to look through for one patient's block

async function findBlock(agentId: string): Promise<BlockView | null> {
  let after: string | null = null;
  for (let page = 0; page < BLOCK_PAGES; page += 1) {
    const result: Page<BlockView> = await api<Page<BlockView>>(
      'GET',
      `/v1/blocks?limit=100${after === null ? '' : `&after=${encodeURIComponent(after)}`}`,
    );
    const found = result.items.find((block) => block.patient_agent_id === agentId);
    if (found !== undefined) return found;
    if (result.next === null) return null;
    after = result.next;
  }
  return null;
}

export function Patients() {
  const [term, setTerm] = useState('');
  const [submitted, setSubmitted] = useState<{ term: string; cursor: string | null }>({ term: '', cursor: null });
  const [selected, setSelected] = useState<string | null>(null);
  const results = useLoad(
    () =>
      submitted.term === ''
        ? api<Page<PatientView>>(
            'GET',
            `/v1/patients?limit=25${submitted.cursor === null ? '' : `&after=${encodeURIComponent(submitted.cursor)}`}`,
          )
        : api<Page<PatientView>>('POST', '/v1/patients/search', {
            query: submitted.term,
            limit: 25,
            ...(submitted.cursor === null ? {} : { cursor: submitted.cursor }),
          }),
    [submitted],
  );

  const search = (event: Event) => {
    event.preventDefault();
    setSelected(null);
    setSubmitted({ term: term.trim(), cursor: null });
  };

  if (selected !== null) return <PatientDetail agentId={selected} onBack={() => setSelected(null)} />;
  return (
    <section>
      <PageHeader title="Patients">Patients whose CareAgents have connected to this Neuron.</PageHeader>
      <search>
        <form class="toolbar" onSubmit={search}>
          <Field label="Search by name or agent id">
            <input
              type="search"
              name="patient-search"
              value={term}
              onInput={(event) => setTerm(event.currentTarget.value)}
              maxLength={256}
            />
          </Field>
          <button type="submit" class="button button-primary">
            Search
          </button>
          {submitted.term !== '' && (
            <button
              type="button"
              class="button button-quiet"
              onClick={() => {
                setTerm('');
                setSubmitted({ term: '', cursor: null });
              }}
            >
              Show all
            </button>
          )}
        </form>
      </search>
      <ErrorNotice error={results.error} />
      {results.loading && results.data === null && <Loading />}
      {results.data !== null &&
        results.data.items.length === 0 &&
        (submitted.term === '' ? (
          <EmptyState title="No patients yet">
            Patients appear here once their CareAgent completes a handshake with this Neuron. Give patients the handshake address shown by{' '}
            <code>neuron status</code>.
          </EmptyState>
        ) : (
          <EmptyState title="No patient matches">Check the spelling, try part of the name, or paste the full agent id.</EmptyState>
        ))}
      {results.data !== null && results.data.items.length > 0 && (
        <ScrollableTable label="Patients (scrolls sideways on a narrow screen)">
          <table>
            <caption class="visually-hidden">Patients</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Agent id</th>
                <th scope="col">Last seen</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {results.data.items.map((patient) => (
                <tr key={patient.patient_agent_id}>
                  <td data-label="Name">{patient.profile?.display_name ?? <span class="muted">no name on file</span>}</td>
                  <td data-label="Agent id">
                    <code class="wrap">{patient.patient_agent_id}</code>
                  </td>
                  <td data-label="Last seen">
                    <When at={patient.last_seen_at} />
                  </td>
                  <td data-label="">
                    <button
                      type="button"
                      class="button button-small"
                      onClick={() => setSelected(patient.patient_agent_id)}
                      aria-label={`Open ${patient.profile?.display_name ?? patient.patient_agent_id}`}
                    >
                      Open
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollableTable>
      )}
      {results.data?.next && (
        <button type="button" class="button" onClick={() => setSubmitted({ ...submitted, cursor: results.data?.next ?? null })}>
          Next page
        </button>
      )}
    </section>
  );
}

function PatientDetail(props: { agentId: string; onBack: () => void }) {
  const id = encodeURIComponent(props.agentId);
  const patient = useLoad(() => api<PatientView>('GET', `/v1/patients/${id}`), [props.agentId]);
  const relationships = useLoad(
    () => api<Page<RelationshipView>>('GET', `/v1/relationships?patient_agent_id=${id}&limit=100`),
    [props.agentId],
  );
  const block = useLoad(() => findBlock(props.agentId), [props.agentId]);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const unblock = async () => {
    setError(null);
    try {
      await api('DELETE', `/v1/blocks/${id}`);
      setMessage('Unblocked: this patient can connect again. Suspended relationships stay suspended until you resume them.');
      block.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const name = patient.data?.profile?.display_name ?? props.agentId;
  return (
    <section>
      <button type="button" class="button button-quiet" onClick={props.onBack}>
        ← All patients
      </button>
      <PageHeader title={patient.data ? name : 'Patient'} />
      <ErrorNotice error={patient.error} />
      <ErrorNotice error={error} onDismiss={() => setError(null)} />
      {message && <SuccessNotice>{message}</SuccessNotice>}
      {patient.data !== null && (
        <div class="grid-2">
          <div class="card">
            <h2>Connection</h2>
            <dl class="details">
              <dt>Agent id</dt>
              <dd>
                <code class="wrap">{patient.data.patient_agent_id}</code>
              </dd>
              <dt>Endpoint</dt>
              <dd>
                <code class="wrap">{patient.data.patient_endpoint}</code>
              </dd>
              <dt>First seen</dt>
              <dd>
                <When at={patient.data.first_seen_at} />
              </dd>
              <dt>Last seen</dt>
              <dd>
                <When at={patient.data.last_seen_at} />
              </dd>
              <dt>Blocked</dt>
              <dd>
                {block.loading ? (
                  '…'
                ) : block.data ? (
                  <>
                    <Status value="blocked" /> {block.data.reason}
                  </>
                ) : (
                  'No'
                )}
              </dd>
            </dl>
            <div class="actions">
              {block.data ? (
                <button type="button" class="button button-small" onClick={unblock}>
                  Unblock
                </button>
              ) : (
                !block.loading && (
                  <ReasonAction
                    label="Block"
                    danger
                    onSubmit={async (reason) => {
                      const result = await api<{ suspended_relationship_ids: string[] }>('POST', '/v1/blocks', {
                        patient_agent_id: props.agentId,
                        reason,
                      });
                      setMessage(
                        `Blocked: new handshakes from this patient are refused. ${result.suspended_relationship_ids.length} active relationship(s) suspended.`,
                      );
                      block.reload();
                      relationships.reload();
                    }}
                  />
                )
              )}
            </div>
          </div>
          <ProfileForm
            patient={patient.data}
            onSaved={(saved) => {
              setMessage('Profile saved.');
              patient.reload();
              void saved;
            }}
          />
        </div>
      )}
      <div class="card">
        <h2>Relationships</h2>
        <ErrorNotice error={relationships.error} />
        {relationships.data !== null && relationships.data.items.length === 0 && (
          <EmptyState title="No relationships">This patient has not consented to any provider here yet.</EmptyState>
        )}
        {relationships.data !== null && relationships.data.items.length > 0 && (
          <ul class="plain-list">
            {relationships.data.items.map((relationship) => (
              <li key={relationship.id}>
                Provider <code>{relationship.provider_npi}</code> <Status value={relationship.status} /> since{' '}
                <When at={relationship.established_at} />
              </li>
            ))}
          </ul>
        )}
      </div>
    </section>
  );
}

function ProfileForm(props: { patient: PatientView; onSaved: (patient: PatientView) => void }) {
  const profile = props.patient.profile ?? {};
  const [displayName, setDisplayName] = useState(profile.display_name ?? '');
  const [birthDate, setBirthDate] = useState(profile.date_of_birth ?? '');
  const [language, setLanguage] = useState(profile.preferred_language ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const save = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // A merge patch: an emptied field is removed.
      const patch = {
        display_name: displayName.trim() || null,
        date_of_birth: birthDate || null,
        preferred_language: language.trim() || null,
      };
      props.onSaved(await api<PatientView>('PATCH', `/v1/patients/${encodeURIComponent(props.patient.patient_agent_id)}/profile`, patch));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={save}>
      <h2>Front-desk profile</h2>
      <p class="field-hint">Demographics for the front desk only. No clinical information is kept here.</p>
      <Field label="Display name">
        <input value={displayName} maxLength={200} onInput={(event) => setDisplayName(event.currentTarget.value)} />
      </Field>
      <Field label="Date of birth">
        <input type="date" value={birthDate} onInput={(event) => setBirthDate(event.currentTarget.value)} />
      </Field>
      <Field label="Preferred language" hint="A language tag, for example en-US or es">
        <input value={language} maxLength={35} onInput={(event) => setLanguage(event.currentTarget.value)} />
      </Field>
      <ErrorNotice error={error} />
      <button type="submit" class="button button-primary" disabled={busy}>
        Save profile
      </button>
    </form>
  );
}
