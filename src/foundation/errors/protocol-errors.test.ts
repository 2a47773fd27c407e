// The client package's ProtocolError becomes the catalogue's NeuronError with the same code,
// reason, message, HTTP status and WebSocket close code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CONSENT_FAILURE_REASONS as PACKAGE_REASONS,
  PROTOCOL_ERROR_TITLES,
  ProtocolError,
  parseClientMessage,
} from 'neuron-careagent-client/protocol';
import { CONSENT_FAILURE_REASONS, ERROR_CATALOGUE, NeuronError, toCatalogueError } from './index.ts';
import { toNeuronError } from '../../http/app.ts';

describe('protocol errors', () => {
  it('keep their code, reason and message and take the catalogue status and close code', () => {
    const cause = new Error('signature S is not below the group order');
    const converted = toCatalogueError(
      new ProtocolError('CONSENT_FAILED', { reason: 'INVALID_SIGNATURE', message: 'consent token signature does not verify', cause }),
    );
    assert.ok(converted instanceof NeuronError);
    assert.equal(converted.code, 'CONSENT_FAILED');
    assert.equal(converted.reason, 'INVALID_SIGNATURE');
    assert.equal(converted.message, 'consent token signature does not verify');
    assert.equal(converted.status, 403);
    assert.equal(converted.closeCode, 4003);
    assert.equal(converted.cause, cause);
  });

  it('are converted the same way for REST', () => {
    assert.throws(
      () => parseClientMessage('{', 'handshake.auth'),
      (error: unknown) => {
        const rest = toNeuronError(error);
        assert.equal(rest.code, 'INVALID_MESSAGE');
        assert.equal(rest.status, 400);
        assert.equal(rest.message, 'message is not valid JSON');
        return true;
      },
    );
    const tooLarge = toNeuronError(new ProtocolError('MESSAGE_TOO_LARGE'));
    assert.equal(tooLarge.closeCode, 1009);
  });

  it('default to the catalogue titles and share its consent reasons', () => {
    for (const [code, title] of Object.entries(PROTOCOL_ERROR_TITLES)) {
      assert.equal(ERROR_CATALOGUE[code as keyof typeof PROTOCOL_ERROR_TITLES].title, title, code);
    }
    assert.deepEqual([...PACKAGE_REASONS], [...CONSENT_FAILURE_REASONS]);
  });

  it('leave anything else a SERVER_ERROR that keeps its cause for the log', () => {
    const failure = new Error('disk on fire');
    const converted = toCatalogueError(failure);
    assert.equal(converted.code, 'SERVER_ERROR');
    assert.equal(converted.cause, failure);
    const own = new NeuronError('BLOCKED');
    assert.equal(toCatalogueError(own), own);
  });
});
