/** What the Neuron is doing: status, registry, handshakes per day, queues, the audit tree head. */
import { ApiError, api } from '../api.ts';
import { ErrorNotice, Link, Loading, PageHeader, When, useLoad } from '../ui.tsx';
import { HandshakeChart, type HandshakeDay } from '../chart.tsx';
import { TreeHead, loadTreeHead } from '../tree-head.tsx';

interface StatusView {
  version: string;
  started_at: string | null;
  uptime_seconds: number;
  handshakes: { active: number | null; queued: number | null };
  registry: { state: string; registered: boolean; last_heartbeat_at: string | null };
  outbox: { pending: number; delivered: number; dead: number; oldest_pending_at: string | null };
}

function uptime(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3_600);
  const minutes = Math.floor((seconds % 3_600) / 60);
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${minutes} min`;
  return `${minutes} min`;
}

function Stat(props: { label: string; value: string | number; detail?: preact.ComponentChildren; tone?: 'good' | 'warn' | 'bad' }) {
  return (
    <div class={`stat${props.tone ? ` stat-${props.tone}` : ''}`}>
      <span class="stat-label">{props.label}</span>
      <span class="stat-value">{props.value}</span>
      {props.detail && <span class="stat-detail">{props.detail}</span>}
    </div>
  );
}

export function Overview() {
  const status = useLoad(() => api<StatusView>('GET', '/v1/status'), []);
  const stats = useLoad(() => api<{ days: HandshakeDay[] }>('GET', '/v1/stats/handshakes?days=14'), []);
  const treeHead = useLoad(loadTreeHead, []);
  const s = status.data;
  const registryTone = s === null ? undefined : s.registry.registered ? 'good' : s.registry.state === 'disabled' ? undefined : 'warn';
  return (
    <section>
      <PageHeader title="Overview">Is the Neuron healthy, and are patients connecting?</PageHeader>
      <ErrorNotice error={status.error} />
      {status.loading && s === null && <Loading />}
      {s !== null && (
        <div class="stats">
          <Stat
            label="Status"
            value="Running"
            tone="good"
            detail={
              <>
                Version {s.version}, up {uptime(s.uptime_seconds)}
              </>
            }
          />
          <Stat
            label="Registry"
            value={s.registry.state}
            tone={registryTone}
            detail={
              <>
                Last heartbeat: <When at={s.registry.last_heartbeat_at} />
              </>
            }
          />
          <Stat label="Handshakes now" value={s.handshakes.active ?? '–'} detail={<>Queue depth: {s.handshakes.queued ?? 'unknown'}</>} />
          <Stat
            label="Outbox backlog"
            value={s.outbox.pending}
            tone={s.outbox.pending > 0 ? 'warn' : undefined}
            detail={
              <>
                Oldest: <When at={s.outbox.oldest_pending_at} empty="none waiting" />
              </>
            }
          />
          <Stat
            label="Dead letters"
            value={s.outbox.dead}
            tone={s.outbox.dead > 0 ? 'bad' : 'good'}
            detail={s.outbox.dead > 0 ? <Link to="/outbox">Review and retry</Link> : 'Every delivery went out'}
          />
        </div>
      )}
      <div class="card">
        <h2>Handshakes per day, last 14 days</h2>
        <ErrorNotice error={stats.error} />
        {stats.loading && stats.data === null && <Loading />}
        {stats.data !== null && <HandshakeChart days={stats.data.days} />}
      </div>
      <div class="card">
        <h2>Audit log tree head</h2>
        {treeHead.loading && treeHead.data === null && !treeHead.error && <Loading />}
        {treeHead.error instanceof ApiError ? <ErrorNotice error={treeHead.error} /> : null}
        {treeHead.data !== null && <TreeHead head={treeHead.data} />}
        <p>
          <Link to="/audit">Browse and verify the audit log</Link>
        </p>
      </div>
    </section>
  );
}
