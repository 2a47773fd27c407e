import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SERVICE_ENUMERATION_NAME,
  compareProbeRecords,
  goodbyeRecords,
  ipv6Bytes,
  proposedRecords,
  recordKey,
  sameName,
  serviceRecords,
  type MdnsRecord,
} from './dns-records.ts';

const TYPE = '_careagent-neuron._tcp.local';
const FQDN = `Synthetic Clinic.${TYPE}`;
const HOST = 'synthetic-clinic.local';

const records = serviceRecords({
  serviceType: TYPE,
  fqdn: FQDN,
  host: HOST,
  port: 8443,
  txt: { npi: '1245319599', name: 'Synthetic Clinic', ver: '1', path: '/ws/handshake', tls: '1' },
  addresses: ['fe80::1', '10.0.0.5'],
});
const byType = (type: string, name?: string) => records.filter((r) => r.type === type && (name === undefined || r.name === name));

describe('mDNS records', () => {
  it('publishes PTR, SRV, TXT, A, AAAA and the type enumeration, with RFC 6762 TTLs', () => {
    assert.deepEqual(
      byType('PTR').map((r) => [r.name, r.data, r.ttl]),
      [
        [TYPE, FQDN, 4_500],
        [SERVICE_ENUMERATION_NAME, TYPE, 4_500],
      ],
    );
    assert.deepEqual(byType('SRV')[0], {
      name: FQDN,
      type: 'SRV',
      ttl: 120,
      flush: true,
      data: { priority: 0, weight: 0, port: 8443, target: HOST },
    });
    const txt = byType('TXT')[0]?.data as Buffer[];
    assert.deepEqual(
      txt.map((b) => b.toString('utf8')),
      ['npi=1245319599', 'name=Synthetic Clinic', 'ver=1', 'path=/ws/handshake', 'tls=1'],
    );
    assert.deepEqual(
      byType('A').map((r) => [r.name, r.data, r.ttl]),
      [[HOST, '10.0.0.5', 120]],
    );
    assert.deepEqual(
      byType('AAAA').map((r) => [r.name, r.data]),
      [[HOST, 'fe80::1']],
    );
  });

  it('says goodbye with TTL 0 for everything but the shared type enumeration', () => {
    const goodbye = goodbyeRecords(records);
    assert.equal(goodbye.length, records.length - 1);
    assert.ok(goodbye.every((r) => r.ttl === 0 && r.flush === undefined));
    assert.ok(!goodbye.some((r) => r.name === SERVICE_ENUMERATION_NAME));
  });

  it('proposes SRV, TXT, A and AAAA (no PTR) when probing', () => {
    assert.deepEqual(
      proposedRecords(records, [FQDN, HOST])
        .map((r) => r.type)
        .sort(),
      ['A', 'AAAA', 'SRV', 'TXT'],
    );
  });

  it('recognises the same record however it was spelt or decoded', () => {
    assert.ok(sameName('Synthetic CLINIC._CareAgent-Neuron._tcp.local.', FQDN));
    assert.ok(!sameName(`Synthetic Clinic (2).${TYPE}`, FQDN));
    const srv = byType('SRV')[0] as MdnsRecord;
    // dns-packet decodes TXT as Buffers and may spell IPv6 addresses and names differently.
    assert.equal(recordKey({ ...srv, data: { port: 8443, target: 'Synthetic-Clinic.LOCAL' } }), recordKey(srv));
    assert.equal(recordKey({ name: HOST, type: 'AAAA', data: 'fe80:0:0::0:1' }), recordKey({ name: HOST, type: 'AAAA', data: 'fe80::1' }));
    assert.equal(recordKey({ name: FQDN, type: 'TXT', data: ['a=1'] }), recordKey({ name: FQDN, type: 'TXT', data: [Buffer.from('a=1')] }));
    assert.notEqual(recordKey({ ...srv, data: { port: 8444, target: HOST } }), recordKey(srv));
    assert.notEqual(recordKey({ name: FQDN, type: 'NSEC', data: {} }), recordKey(srv));
  });

  it('reads IPv6 addresses into 16 bytes', () => {
    assert.equal(ipv6Bytes('::1')?.toString('hex'), '00000000000000000000000000000001');
    assert.equal(ipv6Bytes('fe80::1%eth0')?.toString('hex'), 'fe800000000000000000000000000001');
    assert.equal(ipv6Bytes('::ffff:10.0.0.5')?.toString('hex'), '00000000000000000000ffff0a000005');
    assert.equal(ipv6Bytes('2001:db8:0:0:1:0:0:1')?.toString('hex'), '20010db8000000000001000000000001');
    assert.equal(ipv6Bytes('10.0.0.5'), null);
  });

  it('breaks simultaneous probe ties as RFC 6762 section 8.2 says', () => {
    const a = (address: string): MdnsRecord => ({ name: HOST, type: 'A', data: address });
    assert.ok(compareProbeRecords([a('10.0.0.5')], [a('10.0.0.6')]) < 0, 'lexicographically earlier data loses');
    assert.ok(compareProbeRecords([a('10.0.0.6')], [a('10.0.0.5')]) > 0);
    assert.equal(compareProbeRecords([a('10.0.0.5'), a('10.0.0.6')], [a('10.0.0.6'), a('10.0.0.5')]), 0, 'order does not matter');
    assert.ok(compareProbeRecords([a('10.0.0.5')], [a('10.0.0.5'), a('10.0.0.6')]) < 0, 'the longer list wins');
    // The record type is compared before the data: A (1) sorts before AAAA (28).
    assert.ok(compareProbeRecords([a('255.255.255.255')], [{ name: HOST, type: 'AAAA', data: '::' }]) < 0);
  });
});
