/** The consent handshake broker: `/ws/handshake`, admission, sessions (docs/handshake.md). */
export { HandshakeBroker } from './broker.ts';
