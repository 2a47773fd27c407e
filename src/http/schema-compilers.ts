/**
 * The compilers fastify uses for route schemas: ajv validators for requests, fast-json-stringify
 * serializers for responses. Each is compiled when its route first needs it instead of when the
 * route is registered. The Neuron's routes declare 79 validated request parts (body, query
 * string, path parameters) and 106 response schemas; a handshake-only deployment calls few of
 * them, and compiling them all at start-up cost ~6 MB of memory for the life of the process
 * (generated code, and V8's optimizing compiler woken by the hot compile loop:
 * docs/benchmarks.md, "Idle memory"). A route's first call pays its compile (about a millisecond).
 *
 * A schema that cannot compile would then fail its route's first request instead of the start-up,
 * so compileAll() compiles every schema handed over so far; the API suite calls it
 * (src/composition/gateway.test.ts) and `neuron start` need not.
 */
import type { Ajv, ValidateFunction } from 'ajv';
import fastJsonStringify from 'fast-json-stringify';

type Serialize = (data: unknown) => string;

/**
 * Where ajv's text conversion produced Infinity: it turns `?limit=Infinity` or `?limit=1e309`
 * into a number it then treats as an integer, and skips `maximum` for it, so the value reached
 * the database. Checked here, once, for every query string, path and header schema.
 */
function nonFiniteFields(data: unknown): string[] {
  if (data === null || typeof data !== 'object') return [];
  const paths: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    const values = Array.isArray(value) ? value : [value];
    if (values.some((item) => typeof item === 'number' && !Number.isFinite(item))) paths.push(`/${key}`);
  }
  return paths;
}

export class OnFirstUseSchemaCompilers {
  readonly #compileNow: Array<() => void> = [];

  readonly #bodies: Ajv;
  readonly #text: Ajv;

  constructor(options: {
    /** The ajv instance for JSON bodies (types checked as sent). */
    bodies: Ajv;
    /** The ajv instance for query strings, path parameters and headers (text, converted). */
    text: Ajv;
  }) {
    this.#bodies = options.bodies;
    this.#text = options.text;
  }

  /** For app.setValidatorCompiler. */
  readonly validator = ({ schema, httpPart }: { schema: unknown; httpPart?: string }): ValidateFunction => {
    const ajv = httpPart === 'body' ? this.#bodies : this.#text;
    let compiled: ValidateFunction | undefined;
    const compile = (): ValidateFunction => (compiled ??= ajv.compile(schema as object));
    // fastify reads .errors off the function it was given after a failed call.
    const validate = ((data: unknown) => {
      const target = compile();
      const valid = target(data);
      validate.errors = target.errors;
      if (valid && httpPart !== 'body') {
        const infinite = nonFiniteFields(data);
        if (infinite.length > 0) {
          validate.errors = infinite.map((instancePath) => ({
            instancePath,
            schemaPath: '#/type',
            keyword: 'type',
            params: {},
            message: 'must be a finite number',
          }));
          return false;
        }
      }
      return valid;
    }) as ValidateFunction;
    this.#compileNow.push(compile);
    return validate;
  };

  /** For app.setSerializerCompiler. */
  readonly serializer = ({ schema }: { schema: unknown }): Serialize => {
    let compiled: Serialize | undefined;
    const compile = (): Serialize => (compiled ??= fastJsonStringify(schema as Parameters<typeof fastJsonStringify>[0]) as Serialize);
    this.#compileNow.push(compile);
    return (data) => compile()(data);
  };

  /** Compiles every schema not compiled yet (throwing the first that cannot); returns how many schemas there are. */
  compileAll(): number {
    for (const compile of this.#compileNow) compile();
    return this.#compileNow.length;
  }
}
