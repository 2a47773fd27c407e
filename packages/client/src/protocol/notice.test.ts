import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { publicKeyToBase64url } from './keys.ts';
import { NOTICE_SIGNATURE_PREFIX, verifyProviderNotice } from './notice.ts';

const organization = generateKeyPairSync('ed25519');
const ORGANIZATION_KEY = publicKeyToBase64url(organization.publicKey);
const BODY = '{"event_id":"00000000-0000-4000-8000-000000000001","patient_agent_id":"patient-agent-123"}';
const header = (body: string, key = organization.privateKey): string =>
  `${NOTICE_SIGNATURE_PREFIX}${sign(null, Buffer.from(body, 'utf8'), key).toString('base64url')}`;

describe('verifyProviderNotice', () => {
  it("accepts the organization key's signature over the exact body, as text or bytes", () => {
    assert.equal(verifyProviderNotice(BODY, header(BODY), ORGANIZATION_KEY), true);
    assert.equal(verifyProviderNotice(Buffer.from(BODY, 'utf8'), header(BODY), ORGANIZATION_KEY), true);
  });

  it('refuses another body, another key, another scheme, a missing or malformed header', () => {
    const other = generateKeyPairSync('ed25519');
    assert.equal(verifyProviderNotice(`${BODY} `, header(BODY), ORGANIZATION_KEY), false, 'a re-serialised body');
    assert.equal(verifyProviderNotice(BODY, header(BODY, other.privateKey), ORGANIZATION_KEY), false, 'signed by a key we do not trust');
    assert.equal(verifyProviderNotice(BODY, header(BODY).replace('ed25519=', 'hmac-sha256='), ORGANIZATION_KEY), false);
    assert.equal(verifyProviderNotice(BODY, undefined, ORGANIZATION_KEY), false);
    assert.equal(verifyProviderNotice(BODY, `${NOTICE_SIGNATURE_PREFIX}not-a-signature`, ORGANIZATION_KEY), false);
    assert.equal(verifyProviderNotice(BODY, header(BODY), 'not-a-key'), false);
  });
});
