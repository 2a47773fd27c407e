/**
 * The fastify instance a route plugin registers its routes on, with TypeBox schemas typing each
 * request: what `withTypeProvider<TypeBoxTypeProvider>()` answers inside a plugin. Named so a
 * plugin can hand it to one function per group of routes.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';

export type RouteApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;
