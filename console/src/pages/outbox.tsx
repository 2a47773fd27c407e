/** The outbox: deliveries that gave up (dead letters), each retried on demand. */
import { useState } from 'preact/hooks';
import { api, query, type Page } from '../api.ts';
import { EmptyState, ErrorNotice, ScrollableTable, Loading, PageHeader, SuccessNotice, When, useLoad } from '../ui.tsx';

interface DeadLetter {
  event_id: string;
  kind: string;
  event_type: string;
  target: string;
  attempts: number;
  last_error: string | null;
  created_at: string;
}

export function Outbox() {
  const [after, setAfter] = useState<string | null>(null);
  const list = useLoad(() => api<Page<DeadLetter>>('GET', `/v1/outbox/dead${query({ after, limit: 50 })}`), [after]);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const retry = async (letter: DeadLetter) => {
    setError(null);
    try {
      await api('POST', `/v1/outbox/${encodeURIComponent(letter.event_id)}/retry`);
      setMessage(`Queued again: the ${letter.event_type} notice to ${letter.target} is being delivered.`);
      list.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <section>
      <PageHeader title="Outbox">Notices to providers and webhook deliveries that failed every attempt.</PageHeader>
      <ErrorNotice error={error} onDismiss={() => setError(null)} />
      {message && <SuccessNotice>{message}</SuccessNotice>}
      <ErrorNotice error={list.error} />
      {list.loading && list.data === null && <Loading />}
      {list.data !== null && list.data.items.length === 0 && (
        <EmptyState title="No dead letters">Every notice and webhook was delivered. Nothing to do.</EmptyState>
      )}
      {list.data !== null && list.data.items.length > 0 && (
        <ScrollableTable label="Dead letters (scrolls sideways on a narrow screen)">
          <table>
            <caption class="visually-hidden">Dead letters</caption>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">To</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last error</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((letter) => (
                <tr key={letter.event_id}>
                  <td data-label="Event">
                    <code>{letter.event_type}</code>
                    <br />
                    <span class="muted">{letter.kind}</span>
                  </td>
                  <td data-label="To" class="wrap">
                    {letter.target}
                  </td>
                  <td data-label="Attempts">{letter.attempts}</td>
                  <td data-label="Last error" class="wrap">
                    {letter.last_error ?? '–'}
                  </td>
                  <td data-label="Created">
                    <When at={letter.created_at} />
                  </td>
                  <td data-label="">
                    <button
                      type="button"
                      class="button button-small"
                      onClick={() => retry(letter)}
                      aria-label={`Retry ${letter.event_type} to ${letter.target}`}
                    >
                      Retry
                    </button>
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
