/**
 * The console's only way to the Neuron: the public REST API, authenticated by the session cookie
 * (HttpOnly, set by POST /v1/console/session). Every state-changing request carries the session's
 * CSRF token in X-CSRF-Token. Errors are the API's problem documents, kept whole so pages can show
 * their title and detail.
 */

export interface Operator {
  name: string;
  role: 'front-desk' | 'admin' | string;
}

export interface Session {
  operator: Operator;
  csrf_token: string;
  expires_at: string;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

/** A refused request: the problem document's fields, or a network failure described the same way. */
export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly code: string;
  readonly fieldErrors: Array<{ path: string; message: string }>;

  constructor(
    status: number,
    problem: { title?: string; detail?: string; code?: string; errors?: Array<{ path: string; message: string }> },
  ) {
    super(problem.detail ?? problem.title ?? `request failed (${status})`);
    this.status = status;
    this.title = problem.title ?? 'Request failed';
    this.detail = problem.detail ?? '';
    this.code = problem.code ?? 'UNKNOWN';
    this.fieldErrors = problem.errors ?? [];
  }
}

let csrfToken: string | null = null;
let onUnauthenticated: () => void = () => {};

/** The page to show when a request finds the session gone (expired or signed out elsewhere). */
export function whenUnauthenticated(handler: () => void): void {
  onUnauthenticated = handler;
}

export function rememberSession(session: Session | null): void {
  csrfToken = session?.csrf_token ?? null;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Calls the API; resolves with the JSON body (undefined for 204), rejects with an ApiError. */
export async function api<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== null) headers['x-csrf-token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? null : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, {
      title: 'The Neuron cannot be reached',
      detail: 'Check that it is running and that this computer is on its network, then try again.',
      code: 'NETWORK',
    });
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, (parsed ?? {}) as ConstructorParameters<typeof ApiError>[1]);
    // A session that ended (expired, signed out elsewhere) sends the operator to sign in; the
    // sign-in request itself answers 401 for wrong credentials and is left to its page.
    if (response.status === 401 && path !== '/v1/console/session') onUnauthenticated();
    throw error;
  }
  return parsed as T;
}

/** Query string from the defined, non-empty values (never used for search terms: those go in bodies). */
export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
