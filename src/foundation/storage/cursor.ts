/**
 * Opaque pagination cursors: base64url of a small JSON array of the sort key of the last item
 * returned. Pagination by key (not offset) stays stable while rows are inserted.
 */
import { NeuronError } from '../errors/index.ts';

/** Longest cursor accepted; real ones are well under 200 characters. */
const MAX_CURSOR_LENGTH = 512;

export function encodeCursor(key: ReadonlyArray<string | number>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string, shape: ReadonlyArray<'string' | 'number'>): Array<string | number> {
  const invalid = (): NeuronError =>
    new NeuronError('INVALID_CURSOR', { errors: [{ path: 'query.after', message: 'is not a cursor this API returned' }] });
  if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(value) || value.length !== shape.length) throw invalid();
  value.forEach((part, index) => {
    if (typeof part !== shape[index]) throw invalid();
  });
  return value as Array<string | number>;
}

/**
 * One page from rows read with `limit + 1`: the extra row only says whether a next page exists,
 * and `next` is the cursor of the last item returned (null on the last page).
 */
export function pageOf<Row, Item>(
  rows: readonly Row[],
  limit: number,
  toItem: (row: Row) => Item,
  cursorKey: (item: Item) => ReadonlyArray<string | number>,
): { items: Item[]; next: string | null } {
  const items = rows.slice(0, limit).map(toItem);
  const last = items[items.length - 1];
  return { items, next: rows.length > limit && last !== undefined ? encodeCursor(cursorKey(last)) : null };
}
