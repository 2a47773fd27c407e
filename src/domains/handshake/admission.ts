/**
 * The safety ceiling (shared/spec/handshake.md section 6), as pure bookkeeping with no I/O and no
 * timers: at most `maxActive` handshakes hold a slot; further arrivals wait in a first-in
 * first-out queue of at most `maxQueued`; a freed slot goes to the oldest waiter.
 *
 * The queue is a doubly linked list so that a waiter that disconnects leaves in O(1) however long
 * the queue is. Every waiter gets the same timeout, so waiters expire in arrival order: the
 * caller needs a single timer, armed for the head's deadline (`nextExpiry`).
 *
 * `AddressCounts` (below) bounds what one client address may hold of the ceiling and the queue.
 */

export interface AdmissionLimits {
  /** handshake.max_concurrent_handshakes */
  maxActive: number;
  /** handshake.max_queued */
  maxQueued: number;
  /** handshake.queue_timeout_ms */
  queueTimeoutMs: number;
}

/** A place in the queue; hand it back to `leave` to withdraw. */
export interface Waiter<T> {
  readonly value: T;
  /** When it joined the queue (the caller's clock, milliseconds). */
  readonly enqueuedAt: number;
}

interface Node<T> extends Waiter<T> {
  prev: Node<T> | null;
  next: Node<T> | null;
  /** False once the node left the queue (admitted, expired, withdrawn or drained). */
  linked: boolean;
}

export type EnterResult<T> = { outcome: 'admitted' } | { outcome: 'queued'; waiter: Waiter<T> } | { outcome: 'full' };

export class Admission<T> {
  #activeCount = 0;
  #queuedCount = 0;
  #head: Node<T> | null = null;
  #tail: Node<T> | null = null;

  readonly #limits: AdmissionLimits;

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
    if (!Number.isInteger(limits.maxActive) || limits.maxActive < 1) throw new RangeError('maxActive must be a positive integer');
    if (!Number.isInteger(limits.maxQueued) || limits.maxQueued < 0) throw new RangeError('maxQueued must be a non-negative integer');
  }

  /** Handshakes holding a slot. */
  get active(): number {
    return this.#activeCount;
  }

  /** Arrivals waiting for a slot. */
  get queued(): number {
    return this.#queuedCount;
  }

  /**
   * A new arrival: takes a free slot, or joins the queue, or is refused when the queue is full.
   * An arrival never overtakes a waiter: with anyone queued it queues too.
   */
  enter(value: T, now: number): EnterResult<T> {
    if (this.#activeCount < this.#limits.maxActive && this.#queuedCount === 0) {
      this.#activeCount += 1;
      return { outcome: 'admitted' };
    }
    if (this.#queuedCount >= this.#limits.maxQueued) return { outcome: 'full' };
    const node: Node<T> = { value, enqueuedAt: now, prev: this.#tail, next: null, linked: true };
    if (this.#tail) this.#tail.next = node;
    else this.#head = node;
    this.#tail = node;
    this.#queuedCount += 1;
    return { outcome: 'queued', waiter: node };
  }

  /**
   * A slot holder finished. When someone waits, the slot passes straight to the oldest waiter,
   * which is returned (it now holds the slot); otherwise the slot becomes free and null is returned.
   */
  release(): Waiter<T> | null {
    if (this.#activeCount <= 0) throw new Error('release() without a matching admission');
    const next = this.#shift();
    if (next === null) this.#activeCount -= 1;
    return next;
  }

  /** Withdraws a waiter (its client went away). Returns false when it already left the queue. */
  leave(waiter: Waiter<T>): boolean {
    const node = waiter as Node<T>;
    if (!node.linked) return false;
    this.#unlink(node);
    return true;
  }

  /** Removes and returns, oldest first, every waiter whose queue timeout has passed at `now`. */
  expire(now: number): Array<Waiter<T>> {
    const expired: Array<Waiter<T>> = [];
    while (this.#head !== null && this.#head.enqueuedAt + this.#limits.queueTimeoutMs <= now) {
      const node = this.#head;
      this.#unlink(node);
      expired.push(node);
    }
    return expired;
  }

  /** When the oldest waiter times out (caller's clock), or null with nobody waiting. */
  nextExpiry(): number | null {
    return this.#head === null ? null : this.#head.enqueuedAt + this.#limits.queueTimeoutMs;
  }

  /** Removes and returns every waiter, oldest first (shutdown). */
  drain(): Array<Waiter<T>> {
    const all: Array<Waiter<T>> = [];
    while (this.#head !== null) {
      const node = this.#head;
      this.#unlink(node);
      all.push(node);
    }
    return all;
  }

  #shift(): Waiter<T> | null {
    const node = this.#head;
    if (node === null) return null;
    this.#unlink(node);
    return node;
  }

  #unlink(node: Node<T>): void {
    if (node.prev) node.prev.next = node.next;
    else this.#head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.#tail = node.prev;
    node.prev = null;
    node.next = null;
    node.linked = false;
    this.#queuedCount -= 1;
  }
}

/**
 * Upgrades pending per client address (handshake.max_pending_per_address): queued plus in
 * progress, counted from arrival until the upgrade is refused, leaves the queue or its handshake
 * reaches a terminal state. Pure bookkeeping, one map operation per call; an address with nothing
 * pending has no entry, so the map never holds more than the ceiling plus the queue.
 */
export class AddressCounts {
  readonly #counts = new Map<string, number>();
  #totalCount = 0;

  readonly #maxPerAddress: number;

  constructor(maxPerAddress: number) {
    this.#maxPerAddress = maxPerAddress;
    if (!Number.isInteger(maxPerAddress) || maxPerAddress < 1) throw new RangeError('maxPerAddress must be a positive integer');
  }

  /** Counts one more upgrade for `address`, or returns false (counting nothing) when it is at its limit. */
  acquire(address: string): boolean {
    const count = this.#counts.get(address) ?? 0;
    if (count >= this.#maxPerAddress) return false;
    this.#counts.set(address, count + 1);
    this.#totalCount += 1;
    return true;
  }

  /** One upgrade of `address` ended. Each successful acquire is released exactly once. */
  release(address: string): void {
    const count = this.#counts.get(address);
    if (count === undefined) throw new Error('release() without a matching acquire()');
    if (count <= 1) this.#counts.delete(address);
    else this.#counts.set(address, count - 1);
    this.#totalCount -= 1;
  }

  /** Upgrades pending from `address`. */
  pending(address: string): number {
    return this.#counts.get(address) ?? 0;
  }

  /** Addresses with anything pending. */
  get addresses(): number {
    return this.#counts.size;
  }

  /** Upgrades pending over all addresses. */
  get total(): number {
    return this.#totalCount;
  }
}
