// Kafka security settings from the environment and from VIGIL_KAFKA_CONFIG's file: what each
// combination gives kafkajs, and a named error (never quoting a password) for each mistake.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KafkaSecurityError, describeSecurity, kafkaSecurity } from '../../kernel/kafka-security.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-sec-'));
const CA = join(dir, 'ca.pem');
const CERT = join(dir, 'client.pem');
const KEY = join(dir, 'client.key');
writeFileSync(CA, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
writeFileSync(CERT, '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n');
writeFileSync(KEY, '-----BEGIN PRIVATE KEY-----\nMIID\n-----END PRIVATE KEY-----\n');

function error(env: NodeJS.ProcessEnv): string {
  try {
    kafkaSecurity(env);
  } catch (err) {
    expect(err).toBeInstanceOf(KafkaSecurityError);
    return (err as Error).message;
  }
  throw new Error('expected a KafkaSecurityError');
}

describe('kafkaSecurity', () => {
  it('is PLAINTEXT with nothing set', () => {
    expect(kafkaSecurity({})).toEqual({ protocol: 'PLAINTEXT' });
  });

  it('SASL_SSL with SCRAM: the mechanism in kafkajs spelling, TLS verifying the CA and the hostname', () => {
    const s = kafkaSecurity({
      KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'alice',
      KAFKA_SASL_PASSWORD: 's3cret',
      KAFKA_SSL_CA_LOCATION: CA,
    });
    expect(s.protocol).toBe('SASL_SSL');
    expect(s.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'alice', password: 's3cret' });
    expect(s.ssl?.ca).toContain('BEGIN CERTIFICATE');
    expect(s.ssl?.rejectUnauthorized).toBe(true);
    expect(s.ssl?.checkServerIdentity).toBeUndefined();
    expect(describeSecurity(s)).toBe('SASL_SSL, SCRAM-SHA-512 as alice, no client certificate, hostname verified');
    expect(describeSecurity(s)).not.toContain('s3cret');
  });

  it('SSL with a client certificate and hostname verification off', () => {
    const s = kafkaSecurity({
      KAFKA_SECURITY_PROTOCOL: 'SSL',
      KAFKA_SSL_CERTIFICATE_LOCATION: CERT,
      KAFKA_SSL_KEY_LOCATION: KEY,
      KAFKA_SSL_KEY_PASSWORD: 'kp',
      KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM: 'none',
    });
    expect(s.ssl?.cert).toContain('MIIC');
    expect(s.ssl?.key).toContain('PRIVATE KEY');
    expect(s.ssl?.passphrase).toBe('kp');
    expect(s.ssl?.checkServerIdentity?.()).toBeUndefined();
    expect(s.sasl).toBeUndefined();
    expect(describeSecurity(s)).toBe('SSL, client certificate, hostname not verified');
  });

  it('names each mistake', () => {
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'TLS' })).toMatch(/^KAFKA_SECURITY_PROTOCOL: security.protocol must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, not "TLS"/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' })).toMatch(/needs a SASL mechanism: set KAFKA_SASL_MECHANISM/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'GSSAPI' })).toMatch(/KAFKA_SASL_MECHANISM: sasl.mechanism must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, not "GSSAPI"/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_PASSWORD: 'pw-x' })).toMatch(/needs a user name: set KAFKA_SASL_USERNAME/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u' })).toMatch(/needs a password: set KAFKA_SASL_PASSWORD/);
    expect(error({ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'pw-x' })).toMatch(/SASL settings are given but security.protocol is PLAINTEXT/);
    expect(error({ KAFKA_SSL_CA_LOCATION: CA })).toMatch(/TLS settings are given but security.protocol is PLAINTEXT/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: CERT })).toMatch(/needs both ssl.certificate.location and ssl.key.location/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: join(dir, 'nope.pem') })).toMatch(/^KAFKA_SSL_CA_LOCATION: ssl.ca.location .*nope.pem: no such file/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: KEY })).toMatch(/holds no PEM CERTIFICATE block/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: dir })).toMatch(/not a regular file/);
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM: 'ldap' })).toMatch(/must be https or none/);
    // No message quotes a password, even one given where a mechanism belongs.
    expect(error({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u' })).not.toContain('pw');
  });

  it('reads librdkafka keys from VIGIL_KAFKA_CONFIG, paths relative to the file; variables override it', () => {
    const file = join(dir, 'client.properties');
    writeFileSync(file, ['# a Confluent client config', 'security.protocol=SASL_SSL', 'sasl.mechanisms = PLAIN', 'sasl.username=bob', 'sasl.password: from-file', 'ssl.ca.location=ca.pem', ''].join('\n'));
    const s = kafkaSecurity({ VIGIL_KAFKA_CONFIG: file, KAFKA_SASL_PASSWORD: 'from-env' });
    expect(s.sasl).toEqual({ mechanism: 'plain', username: 'bob', password: 'from-env' });
    expect(s.ssl?.ca).toContain('MIIB');
  });

  it('a config file mistake names the file and line', () => {
    const file = join(dir, 'bad.properties');
    writeFileSync(file, 'security.protocol=SSL\nsasl.jaas.config=x\n');
    expect(error({ VIGIL_KAFKA_CONFIG: file })).toBe(`${file}:2: unknown key "sasl.jaas.config" (known: security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, ssl.certificate.location, ssl.key.location, ssl.key.password, ssl.endpoint.identification.algorithm)`);
    writeFileSync(file, 'security.protocol=SSL\njust words\n');
    expect(error({ VIGIL_KAFKA_CONFIG: file })).toBe(`${file}:2: expected key=value`);
    writeFileSync(file, 'security.protocol=SSL\nssl.ca.location=missing.pem\n');
    expect(error({ VIGIL_KAFKA_CONFIG: file })).toMatch(new RegExp(`^${file}:2: ssl.ca.location .*missing.pem: no such file`));
    expect(error({ VIGIL_KAFKA_CONFIG: join(dir, 'none.properties') })).toMatch(/^VIGIL_KAFKA_CONFIG .*none.properties: no such file/);
    expect(error({ VIGIL_KAFKA_CONFIG: dir })).toMatch(/not a regular file/);
  });
});
