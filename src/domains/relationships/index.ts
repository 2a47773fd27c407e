/** The relationships domain's public face: other folders import it only from here. */
export {
  RelationshipService,
  establishRelationship,
  type EstablishOutcome,
  type EstablishRequest,
  type RelationshipActor,
  type RelationshipServiceOptions,
} from './service.ts';
export { relationshipRoutes, relationshipView, RelationshipSchema } from './routes.ts';
export { relationshipAttestationRoutes } from './attestation-route.ts';
export { transitionFor, RELATIONSHIP_ACTIONS, type RelationshipAction } from './transitions.ts';
export type { Relationship, RelationshipStatus } from './store.ts';
