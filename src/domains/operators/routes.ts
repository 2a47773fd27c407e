/**
 * The console's session routes (docs/console.md "Sign-in and sessions"):
 *
 *   POST   /v1/console/session   sign in with name and password; sets the session cookie
 *   GET    /v1/console/session   who is signed in, with the CSRF token (after a page reload)
 *   DELETE /v1/console/session   sign out: the session row is deleted and the cookie cleared
 *
 * Their authentication is the session itself, so they declare `auth: none` and check the cookie
 * here. Everything else the console does goes through the ordinary REST routes, where the cookie is
 * one more kind of principal (./session-auth.ts).
 */
import type { RouteApp } from '../../foundation/rest/route-app.ts';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { NeuronError } from '../../foundation/errors/index.ts';
import { NoQuery, problems } from '../../foundation/rest/schemas.ts';
import { clearedSessionCookie, sessionCookie } from './cookies.ts';
import { SessionViewSchema, SignInBody } from './schemas.ts';
import { overTls, requireCsrf, sessionOf } from './session-auth.ts';
import type { OperatorService } from './service.ts';

const notSignedIn = (): NeuronError =>
  new NeuronError('UNAUTHENTICATED', { message: 'not signed in to the console; sign in with POST /v1/console/session' });

/** These routes' authentication is the session cookie itself, checked in each handler. */
const noAuth = { auth: { kind: 'none' as const } };

/** Signing in: the one session route without a session. */
function signInRoute(app: RouteApp, service: OperatorService): void {
  app.post(
    '/v1/console/session',
    {
      config: noAuth,
      schema: {
        tags: ['console'],
        operationId: 'signIn',
        summary: 'Sign in to the console',
        description:
          'For console operators (created with `neuron operator add`), not API clients. Sets the `neuron_session` cookie (HttpOnly, SameSite=Strict, Secure under TLS). A wrong name and a wrong password get the same answer. Limited per client address (`console.signin_limit_per_minute`) and locked per name after `console.lockout_failures` failures in a row; every attempt is audited with the name, never the password.',
        querystring: NoQuery,
        body: SignInBody,
        response: {
          200: SessionViewSchema,
          ...problems({
            401: 'The name or password is not correct (INVALID_CREDENTIALS)',
            429: 'Too many attempts from this address (RATE_LIMITED) or too many failures for this name (OPERATOR_LOCKED); see Retry-After',
          }),
        },
      },
    },
    async (request, reply) => {
      const { token, view } = await service.signIn({
        name: request.body.name,
        password: request.body.password,
        clientAddress: request.clientAddress,
      });
      void reply.header('Set-Cookie', sessionCookie(token, service.cookieMaxAgeSeconds(), overTls(request)));
      void reply.header('Cache-Control', 'no-store');
      return view;
    },
  );
}

/** The signed-in session: who it is, and signing out (the cookie decides). */
function sessionRoutes(app: RouteApp, service: OperatorService): void {
  app.get(
    '/v1/console/session',
    {
      config: noAuth,
      schema: {
        tags: ['console'],
        operationId: 'getSession',
        summary: 'The signed-in operator',
        description:
          "The operator of the session cookie, with the session's CSRF token. 401 when there is no live session: UNAUTHENTICATED without a cookie, SESSION_EXPIRED when it has ended.",
        querystring: NoQuery,
        response: {
          200: SessionViewSchema,
          ...problems({ 401: 'Not signed in (UNAUTHENTICATED) or the session has ended (SESSION_EXPIRED)' }),
        },
      },
    },
    async (request, reply) => {
      const found = await sessionOf(service, request);
      if (found === null) throw notSignedIn();
      void reply.header('Cache-Control', 'no-store');
      return service.sessionView(found.session, found.token);
    },
  );

  app.delete(
    '/v1/console/session',
    {
      config: noAuth,
      schema: {
        tags: ['console'],
        operationId: 'signOut',
        summary: 'Sign out',
        description:
          'Ends the session on the server (the cookie no longer works anywhere, even if kept) and clears the cookie. Needs the `X-CSRF-Token` header. Audited.',
        querystring: NoQuery,
        response: {
          204: Type.Null({ description: 'Signed out' }),
          ...problems({
            401: 'Not signed in (UNAUTHENTICATED) or the session has ended (SESSION_EXPIRED)',
            403: 'No or wrong X-CSRF-Token (CSRF_REJECTED)',
          }),
        },
      },
    },
    async (request, reply) => {
      const found = await sessionOf(service, request);
      if (found === null) throw notSignedIn();
      requireCsrf(request, found.token);
      await service.signOut(found.session);
      void reply.header('Set-Cookie', clearedSessionCookie(overTls(request)));
      return reply.code(204).send(null);
    },
  );
}

export function operatorRoutes(service: OperatorService): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    signInRoute(app, service);
    sessionRoutes(app, service);
  };
}
