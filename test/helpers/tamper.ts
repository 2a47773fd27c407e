/**
 * Tampering with a secret in a test: the result must always differ from the original. Replacing
 * the last character with a fixed one ('A') leaves a base64url value unchanged whenever it already
 * ended in that character (about one time in sixteen for a 32-byte value), and the test then fails
 * at random.
 */

/** `value` with its last character replaced by a different one from the same alphabet (base64url). */
export function withLastCharacterChanged(value: string): string {
  if (value.length === 0) throw new Error('nothing to tamper with: the value is empty');
  const last = value.at(-1);
  return `${value.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`;
}
