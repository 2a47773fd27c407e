/**
 * How the provider routes present the roster's refusals: the service names fields plainly (the
 * CLI shares it), over REST they are fields of the body.
 */
import { NeuronError } from '../../foundation/errors/index.ts';

export const REFUSED_URL = {
  400: 'The request is not valid (VALIDATION_FAILED, MALFORMED_JSON), or `notification_url` names a target the outbound policy refuses (OUTBOUND_TARGET_REFUSED); `errors` names each field',
};

/** The service names fields plainly (the CLI shares it); over REST they are fields of the body. */
export async function bodyFields<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof NeuronError && error.code === 'VALIDATION_FAILED' && error.errors) {
      const errors = error.errors.map((e) => ({ path: `body.${e.path}`, message: e.message }));
      throw new NeuronError('VALIDATION_FAILED', {
        message: `invalid request: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
        errors,
      });
    }
    if (error instanceof NeuronError && error.code === 'OUTBOUND_TARGET_REFUSED' && error.errors) {
      const errors = error.errors.map((e) => ({ path: `body.${e.path}`, message: e.message }));
      throw new NeuronError('OUTBOUND_TARGET_REFUSED', { message: errors.map((e) => `${e.path} ${e.message}`).join('; '), errors });
    }
    throw error;
  }
}
