/** The relationships domain's public face: other folders import it only from here. */
export {
  RelationshipService,
  establishRelationship,
} from './service.ts';
export { relationshipRoutes } from './routes.ts';
export { relationshipAttestationRoutes } from './attestation-route.ts';
export { hasLiveRelationshipUnderKey, publicKeysPresentedBy, type Relationship } from './store.ts';
