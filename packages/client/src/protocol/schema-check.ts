/**
 * Compiles TypeBox schemas (plain JSON Schema objects) to checking functions with ajv, the
 * validator fastify already loads for the REST API: the protocol's messages and attestation here,
 * and the registry client's answer shapes. TypeBox's own compiler and value checker would add
 * about 2.3 MB of heap to every Neuron process for the same work (docs/benchmarks.md, "Idle
 * memory").
 *
 * Same semantics as TypeBox's checks: string lengths count code points and patterns are Unicode
 * regular expressions (ajv's defaults, matching TypeBox's); no coercion, no defaults, no removal
 * of fields; the first failure ends the check, and no messages are built, because callers only
 * ever report the problem class, never the input.
 */
import { Ajv } from 'ajv';
import type { Static, TSchema } from 'typebox';

// validateSchema: false skips checking these fixed schemas against the JSON Schema meta-schema,
// which compiles a meta-schema validator for the instance (a few hundred KB of heap kept for the
// life of the process); the tests exercise every schema, and strict mode still rejects an unknown
// keyword.
const ajv = new Ajv({
  allErrors: false,
  messages: false,
  coerceTypes: false,
  useDefaults: false,
  removeAdditional: false,
  validateSchema: false,
});

/** A type guard for `schema`, compiled once: call this at module load, not per message. */
export function compileCheck<T extends TSchema>(schema: T): (value: unknown) => value is Static<T> {
  return ajv.compile<Static<T>>(schema);
}
