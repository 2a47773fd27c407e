/** The consent handshake broker: `/ws/handshake`, admission, sessions (docs/handshake.md). */
export { HandshakeBroker, type HandshakeBrokerOptions } from './broker.ts';
export { Admission, type AdmissionLimits, type EnterResult, type Waiter } from './admission.ts';
export { HandshakeService, type CompletedHandshake, type CompletionRequest } from './service.ts';
export type { ActiveProvider } from '../providers/index.ts';
export { readHandshakeFacts, type HandshakeFacts } from './store.ts';
export type { ProtocolServer, ProtocolSession } from './types.ts';
