/**
 * The handshake's per-session client deadlines of one kind (the auth deadline, the challenge
 * deadline) on one timer for all sessions, instead of a Node Timeout set and cleared per session
 * and phase.
 *
 * Every deadline of a kind is the same span after it was set, and deadlines are set in time
 * order, so they fall due in the order they were added: a doubly linked first-in first-out list
 * whose head is the next one due, and one timer armed for the head. Adding and cancelling are
 * O(1) and allocate one list node. Cancelling never touches the timer, even when the list empties
 * (under load the auth list empties and refills with nearly every handshake): the timer fires at
 * the old head's time, finds nothing due and arms for the head then, if any; so there is about
 * one timer per span, not one per session. The timer is unref'd: a deadline matters only while
 * its session's socket is open, and that socket keeps the process alive.
 */

/** A deadline in the list; hand it back to `cancel`. */
export interface DeadlineEntry<T> {
  readonly value: T;
}

interface Entry<T> extends DeadlineEntry<T> {
  /** performance.now() when it falls due. */
  readonly dueAt: number;
  prev: Entry<T> | null;
  next: Entry<T> | null;
  /** False once it fell due or was cancelled. */
  linked: boolean;
}

export interface DeadlineListOptions<T> {
  /** How long after `add` each deadline falls due, in milliseconds. */
  spanMs: number;
  /** Called once for each deadline that falls due (never for a cancelled one). */
  onDue: (value: T) => void;
}

export class DeadlineList<T> {
  readonly #spanMs: number;
  readonly #onDue: (value: T) => void;
  #head: Entry<T> | null = null;
  #tail: Entry<T> | null = null;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: DeadlineListOptions<T>) {
    this.#spanMs = options.spanMs;
    this.#onDue = options.onDue;
  }

  /** Deadlines pending. */
  get size(): number {
    return this.#size;
  }

  /** A deadline `spanMs` from now for `value`. */
  add(value: T): DeadlineEntry<T> {
    const entry: Entry<T> = { value, dueAt: performance.now() + this.#spanMs, prev: this.#tail, next: null, linked: true };
    if (this.#tail) this.#tail.next = entry;
    else this.#head = entry;
    this.#tail = entry;
    this.#size += 1;
    if (this.#timer === undefined) this.#arm();
    return entry;
  }

  /** Withdraws a deadline; nothing happens when it already fell due or was cancelled. */
  cancel(deadline: DeadlineEntry<T>): void {
    const entry = deadline as Entry<T>;
    if (entry.linked) this.#unlink(entry);
  }

  /** Drops every pending deadline without calling onDue (shutdown). */
  clear(): void {
    while (this.#head !== null) this.#unlink(this.#head);
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    const head = this.#head;
    if (head === null) return;
    // The timer may fire a little before performance.now() reaches dueAt (libuv's loop time is
    // whole milliseconds); #fire then finds nothing due and arms again.
    this.#timer = setTimeout(() => this.#fire(), Math.max(Math.ceil(head.dueAt - performance.now()), 1));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    try {
      while (this.#head !== null && this.#head.dueAt <= now) {
        const entry = this.#head;
        this.#unlink(entry);
        this.#onDue(entry.value);
      }
    } finally {
      // onDue may have added a deadline (and armed the timer) already.
      if (this.#timer === undefined) this.#arm();
    }
  }

  #unlink(entry: Entry<T>): void {
    if (entry.prev) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.#tail = entry.prev;
    entry.prev = null;
    entry.next = null;
    entry.linked = false;
    this.#size -= 1;
  }
}
