/**
 * Compiles the protocol's TypeBox schemas (plain JSON Schema objects) to checking functions with
 * ajv, the validator fastify already loads for the REST API, so the protocol adds no validator of
 * its own to the process (TypeBox's compiler would cost about 2.5 MB of heap for as long as the
 * Neuron runs; docs/benchmarks.md, "Idle memory").
 *
 * Same semantics as TypeBox's own checks: string lengths count code points and patterns are
 * Unicode regular expressions (ajv's defaults, matching TypeBox's); no coercion, no defaults, no
 * removal of fields; the first failure ends the check, and no messages are built, because callers
 * only ever report the problem class, never the input.
 */
import { Ajv } from 'ajv';
import type { Static, TSchema } from 'typebox';

const ajv = new Ajv({ allErrors: false, messages: false, coerceTypes: false, useDefaults: false, removeAdditional: false });

/** A type guard for `schema`, compiled once: call this at module load, not per message. */
export function compileCheck<T extends TSchema>(schema: T): (value: unknown) => value is Static<T> {
  return ajv.compile<Static<T>>(schema);
}
