/**
 * Duplicate object keys in JSON text. RFC 8259 only says names SHOULD be unique, and parsers
 * disagree on a repeat: JSON.parse keeps the last value, others keep the first or refuse. A signed
 * document with a repeated key can therefore mean one thing to the Neuron and another to the
 * patient's agent or an auditor reading the same bytes, so signed JSON with a repeat is refused.
 */

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const COMMA = 0x2c;
const COLON = 0x3a;

/**
 * The first key that appears twice in one object, at any depth, of a JSON text that JSON.parse has
 * already accepted; null when every object's keys are distinct. Keys are compared after unescaping
 * ("a" and "\u0061" are the same key), as every parser compares them.
 */
export function findDuplicateKey(text: string): string | null {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const open: Array<Set<string> | null> = [];
  let expectingKey = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      let escaped = false;
      while (text.charCodeAt(end) !== QUOTE) {
        if (text.charCodeAt(end) === BACKSLASH) {
          escaped = true;
          end += 1;
        }
        end += 1;
      }
      const keys = open[open.length - 1];
      if (expectingKey && keys) {
        const key = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (keys.has(key)) return key;
        keys.add(key);
        expectingKey = false;
      }
      i = end;
    } else if (c === OPEN_OBJECT) {
      open.push(new Set());
      expectingKey = true;
    } else if (c === OPEN_ARRAY) {
      open.push(null);
      expectingKey = false;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      open.pop();
      expectingKey = false;
    } else if (c === COMMA) {
      expectingKey = open[open.length - 1] instanceof Set;
    } else if (c === COLON) {
      expectingKey = false;
    }
  }
  return null;
}
