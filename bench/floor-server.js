// The floor of `npm run bench`'s "floor" section (bench/floor.ts): a server that does only what any
// implementation of the handshake must do per patient, so that the Neuron's CPU per handshake can be
// read against it. Plain JavaScript on Node's http server and ws, like the Neuron, with no database,
// audit, admission queue, logging, metrics or schema checks.
//
//   node bench/floor-server.js transport   WebSocket upgrade, the four messages parsed and
//                                           written (JSON), the close; answers are fixed text
//   node bench/floor-server.js ed25519     the same plus the handshake's Ed25519 work: the
//                                           patient key imported, the consent token and the
//                                           challenge response verified, an attestation signed
//
// Prints the port it listens on (127.0.0.1), then serves until killed.
import { createServer } from 'node:http';
import { createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign, verify } from 'node:crypto';
import { WebSocketServer } from 'ws';

const level = process.argv[2];
if (level !== 'transport' && level !== 'ed25519') {
  process.stderr.write('usage: node bench/floor-server.js transport|ed25519\n');
  process.exit(2);
}
const withCrypto = level === 'ed25519';

// The same sizes the Neuron uses: a 64 KiB message cap, 32-byte nonces.
const MAX_MESSAGE_BYTES = 64 * 1024;
const NONCE_BYTES = 32;
const ORGANIZATION_NPI = '1245319599';
const organizationKey = generateKeyPairSync('ed25519');
const organizationPublicKey = organizationKey.publicKey.export({ format: 'jwk' }).x;

/** An attestation of the Neuron's size and shape, signed when the level includes Ed25519. */
function attestation(patientAgentId, providerNpi, relationshipId) {
  const payload = Buffer.from(
    JSON.stringify({
      v: 1,
      relationship_id: relationshipId,
      patient_agent_id: patientAgentId,
      provider_npi: providerNpi,
      organization_npi: ORGANIZATION_NPI,
      consented_actions: ['office_visit'],
      established_at: new Date().toISOString(),
    }),
  );
  const signature = withCrypto ? sign(null, payload, organizationKey.privateKey) : Buffer.alloc(64);
  return { payload: payload.toString('base64url'), signature: signature.toString('base64url') };
}

const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
const server = createServer((_request, response) => response.writeHead(404).end());
server.on('upgrade', (request, socket, head) => {
  socket.on('error', () => socket.destroy());
  wss.handleUpgrade(request, socket, head, (ws) => {
    let auth = null;
    let patientKey = null;
    let nonce = null;
    ws.on('error', () => ws.terminate());
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (auth === null) {
        auth = message;
        if (withCrypto) {
          patientKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: auth.patient_public_key }, format: 'jwk' });
          verify(
            null,
            Buffer.from(auth.consent_token_payload, 'base64url'),
            patientKey,
            Buffer.from(auth.consent_token_signature, 'base64url'),
          );
        }
        nonce = randomBytes(NONCE_BYTES);
        ws.send(
          JSON.stringify({
            type: 'handshake.challenge',
            nonce: nonce.toString('hex'),
            provider_npi: '1679576722',
            organization_npi: ORGANIZATION_NPI,
          }),
        );
        return;
      }
      if (withCrypto) verify(null, nonce, patientKey, Buffer.from(message.signed_nonce, 'base64url'));
      const relationshipId = randomUUID();
      // Corked like the Neuron's session: the answer and the close frame in one write.
      socket.cork();
      ws.send(
        JSON.stringify({
          type: 'handshake.complete',
          status: 'new',
          relationship_id: relationshipId,
          provider_npi: '1679576722',
          provider_endpoint: 'wss://provider.example/agent',
          consented_actions: ['office_visit'],
          attestation: attestation(auth.patient_agent_id, '1679576722', relationshipId),
          neuron_public_key: organizationPublicKey,
        }),
      );
      ws.close(1000);
      socket.uncork();
    });
  });
});
// A backlog as deep as the bench's largest batch in flight, as the Neuron's.
server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => {
  process.stdout.write(`${server.address().port}\n`);
});
