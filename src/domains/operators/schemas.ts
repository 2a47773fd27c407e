/**
 * Operators' console: roles, the scopes each role holds on the REST API, and the schemas of the
 * session routes.
 */
import Type from 'typebox';
import type { Scope } from '../../foundation/rest/principal.ts';
import { Timestamp } from '../../foundation/rest/schemas.ts';

export const OPERATOR_ROLES = ['front-desk', 'admin'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

/**
 * What a role may do through the REST API. Front desk: read, profile edits, relationship changes
 * and blocks (the `read` and `write` routes); admin: everything (`admin` implies the others).
 */
export const ROLE_SCOPES: Record<OperatorRole, readonly Scope[]> = {
  'front-desk': ['read', 'write'],
  admin: ['admin'],
};

/** Operator names: like API key labels, they appear in the audit log as `operator:<name>`. */
export const OPERATOR_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$';

/** The cookie that carries the session token. */
export const SESSION_COOKIE = 'neuron_session';
/** The header a state-changing request authenticated by the cookie must carry. */
export const CSRF_HEADER = 'x-csrf-token';

export const OperatorName = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: OPERATOR_NAME_PATTERN,
  description: 'the operator name (letters, digits and . _ @ -)',
});

export const SignInBody = Type.Object(
  {
    name: OperatorName,
    // An upper bound only so a body cannot make scrypt hash megabytes; passwords are far shorter.
    password: Type.String({ minLength: 1, maxLength: 1_024, description: 'never logged or audited' }),
  },
  { additionalProperties: false },
);

export const SessionViewSchema = Type.Object(
  {
    operator: Type.Object(
      {
        name: Type.String(),
        role: Type.Union([Type.Literal('front-desk'), Type.Literal('admin')]),
      },
      { additionalProperties: false },
    ),
    csrf_token: Type.String({
      description: 'send it in the X-CSRF-Token header of every POST, PUT, PATCH and DELETE made with the session cookie',
    }),
    expires_at: Timestamp,
  },
  {
    additionalProperties: false,
    description: 'the signed-in operator; `expires_at` is the earlier of the idle and the absolute end, as of this answer',
  },
);
