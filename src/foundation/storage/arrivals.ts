/**
 * How often units of work have been arriving lately (CommitGroups: whether waiting for more is
 * worth it). A saturated Neuron keeps its backlog in the kernel (connections not yet accepted,
 * messages not yet read), where no session count sees it; the arrival rate does.
 *
 * The mean gap between arrivals is an exponentially weighted moving average: each new gap moves it
 * by ARRIVAL_SMOOTHING of the difference, so about the last eight arrivals matter. A gap longer
 * than GAP_CAP_MS counts as that: one quiet spell must make the next lone arrival commit at once,
 * but must not take hundreds of arrivals to forget (from the cap down to a gap of a few
 * milliseconds takes about sixty).
 */

/** Weight of the newest gap: about the last 1 / 0.125 = 8 arrivals make the mean. */
const ARRIVAL_SMOOTHING = 0.125;
/**
 * Gaps are counted as at most a minute: longer only says "quiet". Quiet must expect less than one
 * arrival within the longest commit delay (storage.sqlite_commit_delay_ms, at most a second), so a
 * lone unit never waits.
 */
const GAP_CAP_MS = 60_000;

export class ArrivalRate {
  /** Starts as quiet: nothing arrived lately. */
  #meanGapMs = GAP_CAP_MS;
  #lastAt: number | null = null;

  /** Notes an arrival at `now` (performance.now() milliseconds). */
  arrived(now: number): void {
    if (this.#lastAt !== null) {
      const gap = Math.min(Math.max(now - this.#lastAt, 0), GAP_CAP_MS);
      this.#meanGapMs += (gap - this.#meanGapMs) * ARRIVAL_SMOOTHING;
    }
    this.#lastAt = now;
  }

  /** How many more are expected within `ms` at the recent rate. */
  expectedWithin(ms: number): number {
    // A burst in one turn has gaps of zero; a floor of a microsecond keeps the quotient finite.
    return ms / Math.max(this.#meanGapMs, 0.001);
  }
}
