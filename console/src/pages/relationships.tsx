/**
 * Relationships: filter by provider and status; suspend, resume, terminate with a reason; the
 * signed attestation of an active relationship and its audit receipt (GET
 * /v1/relationships/{id}/attestation), shown and copyable.
 */
import { useState } from 'preact/hooks';
import { api, query, type Page } from '../api.ts';
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
}

/** GET /v1/relationships/{id}/attestation (docs/api.md). */
interface AttestationAnswer {
  attestation: { payload: string; signature: string };
  issued_at: string;
  neuron_public_key: string;
  receipt: unknown;
  receipt_absent_reason: 'NO_AUDIT_ENTRY' | 'NOT_YET_SEALED' | null;
}

const RECEIPT_ABSENT: Record<NonNullable<AttestationAnswer['receipt_absent_reason']>, string> = {
  NO_AUDIT_ENTRY:
    'No audit receipt: the audit log holds no handshake entry for this relationship (it was recorded before the log existed).',
  NOT_YET_SEALED:
    'No audit receipt yet: no signed tree head covers its audit entry. The next recorded change seals it; show the attestation again then.',
};

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
  const id = props.relationship.id;
  const found = useLoad(() => api<AttestationAnswer>('GET', `/v1/relationships/${encodeURIComponent(id)}/attestation`), [id]);
  if (found.loading) return <Loading />;
  if (found.error || found.data === null) return <ErrorNotice error={found.error} />;
  const answer = found.data;
  return (
    <div class="attestation">
      <Copyable label="Signed attestation" value={JSON.stringify(answer.attestation, null, 2)} multiline testId="attestation" />
      <Copyable label="Verify with the Neuron's public key" value={answer.neuron_public_key} />
      {answer.receipt_absent_reason === null ? (
        <>
          <Copyable label="Audit receipt" value={JSON.stringify(answer.receipt, null, 2)} multiline testId="audit-receipt" />
          <p class="field-hint">
            What it proves: the organization cannot later delete this relationship's audit entry without detection (a tree head signed with
            the Neuron's key covers the entry).
          </p>
        </>
      ) : (
        <p class="muted">{RECEIPT_ABSENT[answer.receipt_absent_reason]}</p>
      )}
    </div>
  );
}
