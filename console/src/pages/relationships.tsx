/**
 * Relationships: filter by provider and status; suspend, resume, terminate with a reason; the
 * signed attestation the patient received (and its audit receipt where the Neuron records one),
 * shown and copyable.
 */
import { useState } from 'preact/hooks';
import { ApiError, api, query, type Page } from '../api.ts';
import { Copyable, EmptyState, ErrorNotice, Field, Loading, PageHeader, ReasonAction, Status, When, useLoad } from '../ui.tsx';

export interface RelationshipView {
  id: string;
  patient_agent_id: string;
  provider_npi: string;
  status: 'active' | 'suspended' | 'terminated';
  status_reason: string | null;
  consented_actions: string[];
  consent_expires_at: string;
  established_at: string;
  last_handshake_at: string;
  updated_at: string;
  /** Present when the Neuron returns them with the relationship. */
  attestation?: unknown;
  receipt?: unknown;
}

interface Notice {
  relationship_id: string;
  attestation: { payload: string; signature: string };
  receipt?: unknown;
}

const FEED_PAGES = 20; // pages of the provider's notice feed to look through for one attestation

interface Attested {
  attestation: unknown;
  receipt?: unknown;
  neuron_public_key?: string;
  issued_at?: string;
}

/**
 * The relationship's signed attestation (and audit receipt where the Neuron records one): signed on
 * request by GET /v1/relationships/{id}/attestation; on a Neuron without that route, the one in the
 * provider's notice feed.
 */
async function findAttestation(relationship: RelationshipView): Promise<Attested | null> {
  if (relationship.attestation !== undefined) return { attestation: relationship.attestation, receipt: relationship.receipt };
  try {
    return await api<Attested>('GET', `/v1/relationships/${encodeURIComponent(relationship.id)}/attestation`);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 'ROUTE_NOT_FOUND')) throw error;
  }
  let after: string | null = null;
  for (let page = 0; page < FEED_PAGES; page += 1) {
    const feed: Page<Notice> & { has_more: boolean } = await api(
      'GET',
      `/v1/providers/${relationship.provider_npi}/relationships${query({ limit: 100, after })}`,
    );
    const notice = feed.items.find((item) => item.relationship_id === relationship.id);
    if (notice !== undefined) return { attestation: notice.attestation, receipt: notice.receipt };
    if (!feed.has_more || feed.next === null) return null;
    after = feed.next;
  }
  return null;
}

export function Relationships() {
  const [provider, setProvider] = useState('');
  const [status, setStatus] = useState('');
  const [filters, setFilters] = useState<{ provider: string; status: string; after: string | null }>({
    provider: '',
    status: '',
    after: null,
  });
  const providers = useLoad(() => api<Page<{ npi: string; name: string }>>('GET', '/v1/providers?limit=100'), []);
  const list = useLoad(
    () =>
      api<Page<RelationshipView>>(
        'GET',
        `/v1/relationships${query({ provider_npi: filters.provider, status: filters.status, after: filters.after, limit: 25 })}`,
      ),
    [filters],
  );
  const apply = (event: Event) => {
    event.preventDefault();
    setFilters({ provider, status, after: null });
  };
  const names = new Map((providers.data?.items ?? []).map((item) => [item.npi, item.name]));
  return (
    <section>
      <PageHeader title="Relationships">Which patients have consented to which providers.</PageHeader>
      <form class="toolbar" onSubmit={apply}>
        <Field label="Provider">
          <select value={provider} onChange={(event) => setProvider(event.currentTarget.value)}>
            <option value="">All providers</option>
            {(providers.data?.items ?? []).map((item) => (
              <option key={item.npi} value={item.npi}>
                {item.name} ({item.npi})
              </option>
            ))}
          </select>
        </Field>
        <Field label="Status">
          <select value={status} onChange={(event) => setStatus(event.currentTarget.value)}>
            <option value="">Any status</option>
            <option value="active">Active</option>
            <option value="suspended">Suspended</option>
            <option value="terminated">Terminated</option>
          </select>
        </Field>
        <button type="submit" class="button button-primary">
          Filter
        </button>
      </form>
      <ErrorNotice error={list.error} />
      {list.loading && list.data === null && <Loading />}
      {list.data !== null && list.data.items.length === 0 && (
        <EmptyState title="No relationships match">
          {filters.provider === '' && filters.status === ''
            ? "A relationship is recorded when a patient's CareAgent completes a handshake and consents to one of your providers."
            : 'Try another provider or status, or clear the filters.'}
        </EmptyState>
      )}
      {list.data?.items.map((relationship) => (
        <RelationshipCard
          key={relationship.id}
          relationship={relationship}
          providerName={names.get(relationship.provider_npi)}
          onChanged={list.reload}
        />
      ))}
      {list.data?.next && (
        <button type="button" class="button" onClick={() => setFilters({ ...filters, after: list.data?.next ?? null })}>
          Next page
        </button>
      )}
    </section>
  );
}

function RelationshipCard(props: { relationship: RelationshipView; providerName: string | undefined; onChanged: () => void }) {
  const relationship = props.relationship;
  const [showAttestation, setShowAttestation] = useState(false);
  const act = (action: 'suspend' | 'resume' | 'terminate') => async (reason: string) => {
    await api('POST', `/v1/relationships/${encodeURIComponent(relationship.id)}/${action}`, { reason });
    props.onChanged();
  };
  return (
    <article class="card relationship" aria-label={`Relationship with ${props.providerName ?? relationship.provider_npi}`}>
      <div class="card-head">
        <h2 class="h3">
          {props.providerName ?? 'Provider'} <span class="muted">NPI {relationship.provider_npi}</span>
        </h2>
        <Status value={relationship.status} />
      </div>
      <dl class="details">
        <dt>Patient</dt>
        <dd>
          <code class="wrap">{relationship.patient_agent_id}</code>
        </dd>
        <dt>Consented to</dt>
        <dd>{relationship.consented_actions.join(', ')}</dd>
        <dt>Established</dt>
        <dd>
          <When at={relationship.established_at} />
        </dd>
        <dt>Consent expires</dt>
        <dd>
          <When at={relationship.consent_expires_at} />
        </dd>
        {relationship.status_reason && (
          <>
            <dt>Reason</dt>
            <dd>{relationship.status_reason}</dd>
          </>
        )}
      </dl>
      <div class="actions">
        {relationship.status === 'active' && <ReasonAction label="Suspend" onSubmit={act('suspend')} />}
        {relationship.status === 'suspended' && <ReasonAction label="Resume" onSubmit={act('resume')} />}
        {relationship.status !== 'terminated' && <ReasonAction label="Terminate" danger onSubmit={act('terminate')} />}
        {relationship.status === 'active' && (
          <button
            type="button"
            class="button button-small button-quiet"
            aria-expanded={showAttestation}
            onClick={() => setShowAttestation(!showAttestation)}
          >
            {showAttestation ? 'Hide attestation' : 'Show attestation'}
          </button>
        )}
      </div>
      {showAttestation && <Attestation relationship={relationship} />}
    </article>
  );
}

function Attestation(props: { relationship: RelationshipView }) {
  const found = useLoad(() => findAttestation(props.relationship), [props.relationship.id]);
  if (found.loading) return <Loading />;
  if (found.error) return <ErrorNotice error={found.error} />;
  if (found.data === null)
    return <EmptyState title="No attestation found">This Neuron has no attestation for this relationship to show.</EmptyState>;
  return (
    <div class="attestation">
      <Copyable label="Signed attestation" value={JSON.stringify(found.data.attestation, null, 2)} multiline />
      {found.data.neuron_public_key && <Copyable label="Verify with the Neuron's public key" value={found.data.neuron_public_key} />}
      {found.data.receipt !== undefined && found.data.receipt !== null && (
        <Copyable label="Audit receipt" value={JSON.stringify(found.data.receipt, null, 2)} multiline />
      )}
    </div>
  );
}
