/** Request and response of POST /v1/consent/verify. */
import Type from 'typebox';
import { PatientAgentId } from '../../foundation/rest/schemas.ts';

export const ConsentVerifyBody = Type.Object(
  {
    patient_agent_id: PatientAgentId,
    action: Type.String({
      minLength: 1,
      maxLength: 256,
      description: 'an action exactly as the patient consented to it, for example office_visit',
    }),
    provider_public_key: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'when given, must be the key registered for the calling provider' }),
    ),
  },
  { additionalProperties: false },
);

export const ConsentVerifyResponse = Type.Object(
  {
    allowed: Type.Literal(true),
    relationship_id: Type.String(),
    scope: Type.Array(Type.String(), { description: 'every action the relationship consents to, verbatim' }),
  },
  { additionalProperties: false },
);
