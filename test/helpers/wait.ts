/**
 * Waiting in tests for something that happens in the background (a delivery, a heartbeat, a file):
 * poll until it holds, with a deadline generous enough never to be the point of the test. One
 * helper for every suite, so the argument order and the failure message are the same everywhere.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Long enough for a loaded CI machine; nothing waited for here takes more than a second or two normally. */
export const DEFAULT_WAIT_MS = 15_000;
/** Often enough that a test never idles long after its condition holds, rarely enough to cost nothing. */
const POLL_MS = 20;

/** Polls `check` until it holds; returns how long that took (ms). Fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = DEFAULT_WAIT_MS): Promise<number> {
  const began = Date.now();
  for (;;) {
    if (await check()) return Date.now() - began;
    if (Date.now() - began > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}
