// How Vigil authenticates to Kafka and encrypts its connections: SASL (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512) and TLS (a CA, a client certificate, hostname verification), for every Kafka
// connection the project makes (runner, registry log, readers, producers, bench, CLI).
//
// Configured outside the topology file, never inside it: environment variables, or a properties
// file named by VIGIL_KAFKA_CONFIG with librdkafka's key names (the ones a Confluent client's
// config already uses). A variable overrides the same key from the file.
//
//   security.protocol                    KAFKA_SECURITY_PROTOCOL      PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
//   sasl.mechanism                       KAFKA_SASL_MECHANISM         PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
//   sasl.username                        KAFKA_SASL_USERNAME
//   sasl.password                        KAFKA_SASL_PASSWORD
//   ssl.ca.location                      KAFKA_SSL_CA_LOCATION        PEM file (default: the system's CAs)
//   ssl.certificate.location             KAFKA_SSL_CERTIFICATE_LOCATION   client certificate (PEM)
//   ssl.key.location                     KAFKA_SSL_KEY_LOCATION       its private key (PEM)
//   ssl.key.password                     KAFKA_SSL_KEY_PASSWORD
//   ssl.endpoint.identification.algorithm KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM  https (default) | none
//
// The result has the shape kafkajs takes as `ssl` and `sasl`; errors name the variable or the
// file and line, and never quote a password.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export type SecurityProtocol = 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';
export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

export interface KafkaTls {
  /** PEM text of the CA certificates to trust (absent: the system's). */
  ca?: string;
  cert?: string;
  key?: string;
  passphrase?: string;
  /** Always true: a certificate that does not chain to a trusted CA is refused. */
  rejectUnauthorized: true;
  /** Present (returning undefined) when hostname verification is off. */
  checkServerIdentity?: () => undefined;
}

/** One member per mechanism, as kafkajs types it. */
export type KafkaSasl = { [M in SaslMechanism]: { mechanism: M; username: string; password: string } }[SaslMechanism];

export interface KafkaSecurity {
  protocol: SecurityProtocol;
  ssl?: KafkaTls;
  sasl?: KafkaSasl;
}

export class KafkaSecurityError extends Error {
  override name = 'KafkaSecurityError';
}

/** librdkafka key -> environment variable. */
const KEYS = {
  'security.protocol': 'KAFKA_SECURITY_PROTOCOL',
  'sasl.mechanism': 'KAFKA_SASL_MECHANISM',
  'sasl.username': 'KAFKA_SASL_USERNAME',
  'sasl.password': 'KAFKA_SASL_PASSWORD',
  'ssl.ca.location': 'KAFKA_SSL_CA_LOCATION',
  'ssl.certificate.location': 'KAFKA_SSL_CERTIFICATE_LOCATION',
  'ssl.key.location': 'KAFKA_SSL_KEY_LOCATION',
  'ssl.key.password': 'KAFKA_SSL_KEY_PASSWORD',
  'ssl.endpoint.identification.algorithm': 'KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM',
} as const;
type Key = keyof typeof KEYS;
const PROTOCOLS: readonly SecurityProtocol[] = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'];
const MECHANISMS: readonly string[] = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'];
const MAX_CONFIG_BYTES = 1024 * 1024;

interface Setting {
  value: string;
  /** Where it came from, for messages: "KAFKA_SASL_USERNAME" or "kafka.properties:3". */
  origin: string;
  /** Directory that relative paths resolve against. */
  base: string;
}

/**
 * The Kafka security settings of this process's environment (and VIGIL_KAFKA_CONFIG's file), or
 * throws a KafkaSecurityError naming what is wrong. PLAINTEXT when nothing is set.
 */
export function kafkaSecurity(env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const settings = new Map<Key, Setting>();
  const file = env.VIGIL_KAFKA_CONFIG;
  if (file !== undefined && file.trim() !== '') for (const [k, s] of readConfigFile(resolve(file))) settings.set(k, s);
  for (const [key, name] of Object.entries(KEYS) as Array<[Key, string]>) {
    const value = env[name];
    if (value !== undefined && value !== '') settings.set(key, { value, origin: name, base: process.cwd() });
  }
  const get = (k: Key): Setting | undefined => settings.get(k);

  const proto = get('security.protocol');
  const protocol = (proto?.value.trim().toUpperCase() ?? 'PLAINTEXT') as SecurityProtocol;
  if (!PROTOCOLS.includes(protocol)) throw new KafkaSecurityError(`${proto!.origin}: security.protocol must be one of ${PROTOCOLS.join(', ')}, not "${short(proto!.value)}"`);
  const out: KafkaSecurity = { protocol };

  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    const tls: KafkaTls = { rejectUnauthorized: true };
    const ca = get('ssl.ca.location');
    if (ca) tls.ca = readPem(ca, 'ssl.ca.location', 'CERTIFICATE');
    const cert = get('ssl.certificate.location');
    const key = get('ssl.key.location');
    if ((cert === undefined) !== (key === undefined)) {
      const given = (cert ?? key)!;
      throw new KafkaSecurityError(`${given.origin}: a client certificate needs both ssl.certificate.location and ssl.key.location (KAFKA_SSL_CERTIFICATE_LOCATION, KAFKA_SSL_KEY_LOCATION)`);
    }
    if (cert && key) {
      tls.cert = readPem(cert, 'ssl.certificate.location', 'CERTIFICATE');
      tls.key = readPem(key, 'ssl.key.location', 'PRIVATE KEY');
      const pass = get('ssl.key.password');
      if (pass) tls.passphrase = pass.value;
    }
    const ident = get('ssl.endpoint.identification.algorithm');
    const algo = ident?.value.trim().toLowerCase() ?? 'https';
    if (algo === 'none' || algo === '') tls.checkServerIdentity = () => undefined;
    else if (algo !== 'https') throw new KafkaSecurityError(`${ident!.origin}: ssl.endpoint.identification.algorithm must be https or none, not "${short(ident!.value)}"`);
    out.ssl = tls;
  } else {
    const stray = (['ssl.ca.location', 'ssl.certificate.location', 'ssl.key.location'] as const).map(get).find((s) => s !== undefined);
    if (stray) throw new KafkaSecurityError(`${stray.origin}: TLS settings are given but security.protocol is ${protocol}; use SSL or SASL_SSL`);
  }

  if (protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL') {
    const mech = get('sasl.mechanism');
    if (!mech) throw new KafkaSecurityError(`security.protocol ${protocol} needs a SASL mechanism: set KAFKA_SASL_MECHANISM (or sasl.mechanism) to ${MECHANISMS.join(', ')}`);
    const m = mech.value.trim().toUpperCase();
    if (!MECHANISMS.includes(m)) throw new KafkaSecurityError(`${mech.origin}: sasl.mechanism must be one of ${MECHANISMS.join(', ')}, not "${short(mech.value)}" (GSSAPI and OAUTHBEARER are not supported)`);
    const user = get('sasl.username');
    const pass = get('sasl.password');
    if (!user) throw new KafkaSecurityError(`SASL ${m} needs a user name: set KAFKA_SASL_USERNAME (or sasl.username)`);
    if (!pass) throw new KafkaSecurityError(`SASL ${m} needs a password: set KAFKA_SASL_PASSWORD (or sasl.password)`);
    out.sasl = { mechanism: m.toLowerCase() as SaslMechanism, username: user.value, password: pass.value };
  } else {
    const stray = get('sasl.username') ?? get('sasl.password') ?? get('sasl.mechanism');
    if (stray) throw new KafkaSecurityError(`${stray.origin}: SASL settings are given but security.protocol is ${protocol}; use SASL_PLAINTEXT or SASL_SSL`);
  }
  return out;
}

/** One line for logs: the protocol, mechanism and user, never the password or key. */
export function describeSecurity(s: KafkaSecurity): string {
  const parts: string[] = [s.protocol];
  if (s.sasl) parts.push(`${s.sasl.mechanism.toUpperCase()} as ${s.sasl.username}`);
  if (s.ssl) parts.push(s.ssl.cert ? 'client certificate' : 'no client certificate', s.ssl.checkServerIdentity ? 'hostname not verified' : 'hostname verified');
  return parts.join(', ');
}

function readConfigFile(path: string): Array<[Key, Setting]> {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new KafkaSecurityError(`VIGIL_KAFKA_CONFIG ${path}: not a regular file`);
    if (st.size > MAX_CONFIG_BYTES) throw new KafkaSecurityError(`VIGIL_KAFKA_CONFIG ${path}: larger than 1 MB`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof KafkaSecurityError) throw err;
    throw new KafkaSecurityError(`VIGIL_KAFKA_CONFIG ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const out: Array<[Key, Setting]> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) return;
    const at = `${path}:${i + 1}`;
    const eq = line.search(/[=:]/);
    if (eq <= 0) throw new KafkaSecurityError(`${at}: expected key=value`);
    const given = line.slice(0, eq).trim();
    // librdkafka spells it both ways.
    const key = given === 'sasl.mechanisms' ? 'sasl.mechanism' : given;
    const value = line.slice(eq + 1).trim();
    if (!(key in KEYS)) throw new KafkaSecurityError(`${at}: unknown key "${short(given)}" (known: ${Object.keys(KEYS).join(', ')})`);
    out.push([key as Key, { value, origin: at, base: dirname(path) }]);
  });
  return out;
}

function readPem(s: Setting, key: string, kind: string): string {
  const path = resolve(s.base, s.value);
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new Error('not a regular file');
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new KafkaSecurityError(`${s.origin}: ${key} ${path}: ${why}`);
  }
  if (!text.includes(`-----BEGIN `) || !text.includes(kind)) throw new KafkaSecurityError(`${s.origin}: ${key} ${path} holds no PEM ${kind} block`);
  return text;
}

function short(v: string): string {
  const t = v.replace(/[\u0000-\u001f\u007f]/g, '?');
  return t.length > 60 ? `${t.slice(0, 60)}…` : t;
}
