/**
 * The protocol layer (the neuron-careagent-client package) throws its own ProtocolError with the
 * catalogue's string codes, since the package carries nothing of the server. Here it becomes the
 * catalogue's NeuronError with the same code, reason and public message, and so the same HTTP
 * status and WebSocket close code.
 */
import type { NeuronHandshakeCode } from 'neuron-careagent-client';
import { isProtocolError, type ProtocolError, type ProtocolErrorCode } from 'neuron-careagent-client/protocol';
import type { ErrorCode } from './catalogue.ts';
import { NeuronError, isNeuronError } from './neuron-error.ts';

// Compile-time: every code the package names is one of the catalogue's.
type Includes<Superset, Subset> = [Subset] extends [Superset] ? true : never;
const PACKAGE_CODES_ARE_CATALOGUE_CODES: Includes<ErrorCode, ProtocolErrorCode | NeuronHandshakeCode> = true;
void PACKAGE_CODES_ARE_CATALOGUE_CODES;

export function fromProtocolError(error: ProtocolError): NeuronError {
  return new NeuronError(error.code, {
    message: error.message,
    ...(error.reason === undefined ? {} : { reason: error.reason }),
    ...(error.cause === undefined ? {} : { cause: error.cause }),
  });
}

/**
 * Whatever was thrown, as a catalogue error: a NeuronError as it is, a ProtocolError with its own
 * code, anything else SERVER_ERROR with the original kept as the cause (for the log only).
 */
export function toCatalogueError(error: unknown): NeuronError {
  if (isNeuronError(error)) return error;
  if (isProtocolError(error)) return fromProtocolError(error);
  return new NeuronError('SERVER_ERROR', { cause: error });
}
