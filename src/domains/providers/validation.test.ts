import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bearerToken, credentialIdOf, credentialMatches, isProviderCredential, issueProviderCredential } from './credentials.ts';
import { providerFieldProblems, publicKeyProblem } from './validation.ts';
import { withLastCharacterChanged } from '../../../test/helpers/tamper.ts';

const paths = (input: Record<string, unknown>, required: Array<'npi' | 'name'> = []): string[] =>
  providerFieldProblems(input, required).map((p) => p.path);

test('roster fields: NPI check digit, taxonomy, URL schemes, real curve points', () => {
  assert.deepEqual(
    paths({
      npi: '1679576722',
      name: 'Dr. A',
      provider_types: ['physician'],
      provider_endpoint: 'wss://a.example/agent',
      notification_url: 'https://a.example/n',
    }),
    [],
  );
  assert.deepEqual(paths({ npi: '1679576723' }), ['npi']);
  assert.deepEqual(paths({ provider_types: ['physician', 'wizard'] }), ['provider_types.1']);
  assert.deepEqual(paths({ provider_types: ['physician', 'physician'] }), ['provider_types']);
  assert.deepEqual(paths({ provider_types: [] }), ['provider_types']);
  for (const endpoint of ['http://a.example', 'https://a.example/x', 'ws://a.example:9000', 'wss://a.example/agent'])
    assert.deepEqual(paths({ provider_endpoint: endpoint }), [], endpoint);
  for (const endpoint of [
    'ftp://a.example',
    'mailto:a@example.org',
    'javascript:alert(1)',
    'a.example',
    '',
    'https://user:pw@a.example/',
  ]) {
    assert.deepEqual(paths({ provider_endpoint: endpoint }), ['provider_endpoint'], endpoint);
  }
  assert.deepEqual(paths({ notification_url: 'wss://a.example/n' }), ['notification_url']);
  assert.deepEqual(paths({ name: '   ' }), ['name']);
  for (const bidi of [
    '\u202A',
    '\u202B',
    '\u202C',
    '\u202D',
    '\u202E',
    '\u2066',
    '\u2067',
    '\u2068',
    '\u2069',
    '\u200E',
    '\u200F',
    '\u061C',
  ]) {
    assert.deepEqual(paths({ name: `Dr. ${bidi}A` }), ['name'], `U+${bidi.charCodeAt(0).toString(16)}`);
  }
  assert.deepEqual(paths({ name: 'Dr. \u0007A' }), ['name']);
  assert.deepEqual(paths({ name: 'Dr. Zoë Ñúñez-Åberg, د. سارة' }), [], 'letters of every script are fine');
  assert.deepEqual(paths({}, ['npi', 'name']), ['npi', 'name']);
  assert.deepEqual(paths({ specialty: null, provider_public_key: null, notification_url: null }), [], 'null clears optional fields');
  assert.deepEqual(paths({ credentials: [{ type: 'license', issuer: 'Board', identifier: 'L-1', status: 'active', extra: 1 }] }), [
    'credentials.0.extra',
  ]);
});

test('public keys must be canonical, on the curve and not of small order', () => {
  assert.equal(publicKeyProblem('A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg'), null);
  assert.notEqual(publicKeyProblem('AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), null, 'off the curve');
  assert.notEqual(publicKeyProblem('AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), null, 'the identity point');
  assert.notEqual(publicKeyProblem('A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbh'), null, 'non-canonical last character');
  assert.notEqual(publicKeyProblem('too-short'), null);
});

test('provider credentials: shown once, stored as a digest, compared exactly', () => {
  const issued = issueProviderCredential();
  assert.match(issued.credential, /^nprv_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.ok(isProviderCredential(issued.credential));
  assert.equal(credentialIdOf(issued.credential), issued.credentialId);
  assert.ok(!issued.digest.includes(issued.credential.slice(22)));
  assert.ok(credentialMatches(issued.credential, issued.digest));
  assert.ok(!credentialMatches(withLastCharacterChanged(issued.credential), issued.digest));
  assert.equal(credentialIdOf('nrn_abc_def'), null);
  assert.notEqual(issueProviderCredential().credential, issued.credential);
  assert.equal(bearerToken(`Bearer ${issued.credential}`), issued.credential);
  assert.equal(bearerToken(`bearer  ${issued.credential} `), issued.credential);
  assert.equal(bearerToken(`Basic abc`), null);
  assert.equal(bearerToken(undefined), null);
});
