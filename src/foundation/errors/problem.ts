import { ERROR_CATALOGUE, type ErrorCode } from './catalogue.ts';
import type { NeuronError } from './neuron-error.ts';

/** RFC 9457 problem details, with the catalogue code as an extension member. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  /** The request's id, as in its X-Request-Id response header and the log (src/http/request-edge.ts). */
  request_id?: string;
  reason?: string;
  errors?: Array<{ path: string; message: string }>;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Problem types are stable URIs documented in docs/errors.md. */
export function problemType(code: ErrorCode): string {
  return `https://careagent.network/neuron/errors#${code.toLowerCase().replaceAll('_', '-')}`;
}

export function toProblem(error: NeuronError, instance?: string, requestId?: string): ProblemDocument {
  const definition = ERROR_CATALOGUE[error.code];
  const problem: ProblemDocument = {
    type: problemType(error.code),
    title: definition.title,
    status: error.status,
    detail: error.message,
    code: error.code,
  };
  if (instance !== undefined) problem.instance = instance;
  if (requestId !== undefined) problem.request_id = requestId;
  if (error.reason !== undefined) problem.reason = error.reason;
  if (error.errors !== undefined) problem.errors = [...error.errors];
  return problem;
}
