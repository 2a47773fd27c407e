/** The audit log: browse with a filter, verify the hash chain, the signed tree head. */
import { useState } from 'preact/hooks';
import { api, query, type Page } from '../api.ts';
import { EmptyState, ErrorNotice, ScrollableTable, Field, Loading, PageHeader, When, useLoad } from '../ui.tsx';
import { TreeHead, loadTreeHead } from '../tree-head.tsx';

interface AuditEvent {
  seq: number;
  occurred_at: string;
  event_type: string;
  actor: string;
  details: Record<string, unknown>;
  hash: string;
}

interface Verification {
  ok: boolean;
  entries: number;
  checkpoints: number;
  first_bad_seq: number | null;
  problem: string | null;
}

export function Audit() {
  const [eventType, setEventType] = useState('');
  const [filters, setFilters] = useState<{ eventType: string; after: string | null }>({ eventType: '', after: null });
  const events = useLoad(
    () => api<Page<AuditEvent>>('GET', `/v1/audit/events${query({ event_type: filters.eventType, after: filters.after, limit: 50 })}`),
    [filters],
  );
  const treeHead = useLoad(loadTreeHead, []);
  const [verification, setVerification] = useState<Verification | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const verify = async () => {
    setVerifying(true);
    setError(null);
    setVerification(null);
    try {
      setVerification(await api<Verification>('POST', '/v1/audit/verify'));
    } catch (failure) {
      setError(failure);
    } finally {
      setVerifying(false);
    }
  };

  return (
    <section>
      <PageHeader title="Audit log">Every change, sign-in and handshake, in a hash chain anyone can check.</PageHeader>
      <div class="grid-2">
        <div class="card">
          <h2>Verify the log</h2>
          <p>Recomputes every entry's hash and checks the chain from the first entry to the last.</p>
          <button type="button" class="button button-primary" onClick={verify} disabled={verifying}>
            {verifying ? 'Verifying…' : 'Verify now'}
          </button>
          <ErrorNotice error={error} />
          <div role="status">
            {verification &&
              (verification.ok ? (
                <p class="notice notice-success" data-testid="verify-result">
                  Intact: all {verification.entries} entries and {verification.checkpoints} checkpoints check out.
                </p>
              ) : (
                <p class="notice notice-error" data-testid="verify-result">
                  Broken at entry {verification.first_bad_seq}: {verification.problem}
                </p>
              ))}
          </div>
        </div>
        <div class="card">
          <h2>Signed tree head</h2>
          <ErrorNotice error={treeHead.error} />
          {treeHead.data !== null && <TreeHead head={treeHead.data} />}
        </div>
      </div>
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault();
          setFilters({ eventType: eventType.trim(), after: null });
        }}
      >
        <Field label="Event type" hint="For example patient.blocked or handshake.completed">
          <input value={eventType} maxLength={100} onInput={(event) => setEventType(event.currentTarget.value)} />
        </Field>
        <button type="submit" class="button button-primary">
          Filter
        </button>
      </form>
      <ErrorNotice error={events.error} />
      {events.loading && events.data === null && <Loading />}
      {events.data !== null && events.data.items.length === 0 && (
        <EmptyState title="No entries">
          {filters.eventType === '' ? 'Nothing has been recorded yet.' : 'No entry has this event type; clear the filter to see all.'}
        </EmptyState>
      )}
      {events.data !== null && events.data.items.length > 0 && (
        <ScrollableTable label="Audit entries (scrolls sideways on a narrow screen)">
          <table>
            <caption class="visually-hidden">Audit entries</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">Actor</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {events.data.items.map((event) => (
                <tr key={event.seq}>
                  <td data-label="Entry">{event.seq}</td>
                  <td data-label="When">
                    <When at={event.occurred_at} />
                  </td>
                  <td data-label="Event">
                    <code>{event.event_type}</code>
                  </td>
                  <td data-label="Actor" class="wrap">
                    {event.actor}
                  </td>
                  <td data-label="Details">
                    <code class="details-json">{JSON.stringify(event.details)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollableTable>
      )}
      {events.data?.next && (
        <button type="button" class="button" onClick={() => setFilters({ ...filters, after: events.data?.next ?? null })}>
          Older entries
        </button>
      )}
    </section>
  );
}
