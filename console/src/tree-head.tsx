/**
 * The audit log's signed tree head (GET /v1/audit/tree-head), shown where the Neuron has it. A
 * Neuron without that route answers 404, and the console says so instead of failing.
 */
import { ApiError, api } from './api.ts';
import { Copyable, EmptyState, When } from './ui.tsx';

export interface TreeHeadView {
  tree_size: number;
  root_hash: string;
  timestamp: string;
  signature: string;
  key: string;
}

/** The tree head, or 'absent' when this Neuron does not publish one. */
export async function loadTreeHead(): Promise<TreeHeadView | 'absent'> {
  try {
    return await api<TreeHeadView>('GET', '/v1/audit/tree-head');
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return 'absent';
    throw error;
  }
}

export function TreeHead(props: { head: TreeHeadView | 'absent' }) {
  const head = props.head;
  if (head === 'absent') {
    return (
      <EmptyState title="No signed tree head on this Neuron">
        This Neuron version does not publish a signed tree head. The hash chain is still checked: use Verify on the audit page.
      </EmptyState>
    );
  }
  return (
    <div>
      <dl class="details">
        <dt>Entries</dt>
        <dd>{head.tree_size}</dd>
        <dt>Signed at</dt>
        <dd>
          <When at={head.timestamp} />
        </dd>
      </dl>
      <Copyable label="Root hash" value={head.root_hash} />
      <Copyable label="Signed tree head (JSON)" value={JSON.stringify(head, null, 2)} multiline />
    </div>
  );
}
