// Kafka security on a real broker: the local broker launcher's opt-in secured listeners (SASL_SSL
// with SCRAM and PLAIN, and SSL requiring a client certificate, with a CA and certificates made by
// openssl), and every Vigil command going through them, configured by environment variables or
// VIGIL_KAFKA_CONFIG's file, never by the topology. Wrong credentials end the command with a
// non-zero exit and a message naming the failure, never a hang, and never print the password.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalBroker } from '../../connectors/local-broker.ts';
import type { LocalBroker, SecureListeners } from '../../connectors/local-broker.ts';
import { REPO, exited, spawnVigil, topologyFile, waitFor } from '../helpers/pipeline.ts';
import { uniqueName } from '../kafka.ts';

const PASSWORD = 'sCr4m-pa55-n0t-2-print';
// The secured listeners need openssl to make their certificates; it is on every machine this runs on
// (Debian's openssl package, which .ci/run installs when missing).
let broker: LocalBroker;
let secure: SecureListeners;

beforeAll(async () => {
  broker = await startLocalBroker({ secure: { users: { alice: PASSWORD } }, heapMb: 384 });
  secure = broker.secure!;
});
afterAll(async () => {
  await broker?.stop();
});

/** A CLI command run to its end: exit code and everything it printed. */
function vigil(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, 'bin/vigil.mjs'), ...args], { cwd: REPO, env: { ...process.env, SCHEMA_REGISTRY_URL: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => resolve({ code, output }));
  });
}

function scram(password = PASSWORD): Record<string, string> {
  return {
    KAFKA_BROKERS: secure.saslSsl,
    KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
    KAFKA_SASL_USERNAME: 'alice',
    KAFKA_SASL_PASSWORD: password,
    KAFKA_SSL_CA_LOCATION: secure.caFile,
  };
}

describe('Kafka security (SASL_SSL and SSL listeners of the local broker)', () => {
  it('runs a topology (exactly_once) through SASL_SSL with SCRAM-SHA-512: produce, run, tail', async () => {
    const name = uniqueName('sasl');
    const produced = await vigil(['produce', '-t', `${name}.in`, '-n', '40', '-r', '0', '--partitions', '2'], scram());
    expect(produced.output).toContain(`produced 40 metric records to ${name}.in`);
    expect(produced.code).toBe(0);
    const file = topologyFile(`
version: 1
name: ${name}
guarantee: exactly_once
sources:
  - { name: metrics, topic: ${name}.in, schema: vigil.telemetry.MetricSample, partitions: 2 }
operators:
  - { name: all, type: filter, where: value >= 0 }
sinks:
  - { name: out, from: all, topic: ${name}.out }
`);
    const run = spawnVigil(['run', file, '--metrics-port', '0'], scram());
    try {
      await waitFor(() => /running/.test(run.output()), 120_000, () => `the run's start; logs: ${run.output()}`);
      const tail = await vigil(['tail', `${name}.out`, '--from-beginning', '--read-committed', '-n', '40'], scram());
      expect(tail.code).toBe(0);
      const lines = tail.output.split('\n').filter((l) => l.startsWith('{'));
      expect(lines).toHaveLength(40);
      expect(JSON.parse(lines[0]!).value).toHaveProperty('host');
    } finally {
      run.kill('SIGTERM');
      await exited(run);
    }
    expect(run.output()).toContain(`[vigil] kafka at ${secure.saslSsl} (SASL_SSL, SCRAM-SHA-512 as alice, no client certificate, hostname verified)`);
    expect(run.output()).not.toContain(PASSWORD);
  });

  it('PLAIN and SCRAM-SHA-256 authenticate the same user', async () => {
    for (const mechanism of ['PLAIN', 'SCRAM-SHA-256']) {
      const r = await vigil(['produce', '-t', uniqueName('mech'), '-n', '3', '-r', '0', '--partitions', '1'], { ...scram(), KAFKA_SASL_MECHANISM: mechanism });
      expect(r.output).toContain('produced 3 metric records');
      expect(r.code).toBe(0);
    }
  });

  it('wrong credentials: vigil run exits non-zero with the SASL failure, without printing the password', async () => {
    const wrong = 'wr0ng-pa55-n0t-2-print';
    const file = topologyFile(`
version: 1
name: ${uniqueName('wrong')}
sources:
  - { name: metrics, topic: ${uniqueName('wrong')}.in, schema: vigil.telemetry.MetricSample, partitions: 1 }
sinks:
  - { name: out, from: metrics, topic: ${uniqueName('wrong')}.out }
`);
    const r = await vigil(['run', file, '--metrics-port', '0'], scram(wrong));
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/SASL SCRAM SHA512 authentication failed: .*invalid credentials/);
    expect(r.output).not.toContain(wrong);
    expect(r.output).not.toContain('    at ');
  });

  it('SSL with a client certificate from a VIGIL_KAFKA_CONFIG file; without the certificate, or trusting no CA, refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-kcfg-'));
    const config = join(dir, 'client.properties');
    writeFileSync(
      config,
      ['security.protocol=SSL', `ssl.ca.location=${secure.caFile}`, `ssl.certificate.location=${secure.clientCertFile}`, `ssl.key.location=${secure.clientKeyFile}`, ''].join('\n'),
    );
    const topic = uniqueName('mtls');
    const ok = await vigil(['produce', '-t', topic, '-n', '5', '-r', '0', '--partitions', '1'], { KAFKA_BROKERS: secure.ssl, VIGIL_KAFKA_CONFIG: config });
    expect(ok.output).toContain(`produced 5 metric records to ${topic}`);
    expect(ok.code).toBe(0);

    const noCert = await vigil(['produce', '-t', topic, '-n', '1', '-r', '0'], { KAFKA_BROKERS: secure.ssl, KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: secure.caFile });
    expect(noCert.code).not.toBe(0);
    expect(noCert.output).toMatch(new RegExp(`TLS to Kafka at ${secure.ssl} failed: .*(bad certificate|certificate required).* \\(the broker wants a client certificate it trusts: set KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION\\)`));

    // The system's CAs do not include the broker's: the certificate chain is refused.
    const untrusted = await vigil(['produce', '-t', topic, '-n', '1', '-r', '0'], { KAFKA_BROKERS: secure.saslSsl, ...scram(), KAFKA_SSL_CA_LOCATION: '' });
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.output).toContain("self-signed certificate in certificate chain (the broker's certificate does not chain to a CA this client trusts: set KAFKA_SSL_CA_LOCATION");

    // TLS to the PLAINTEXT listener.
    const plain = await vigil(['produce', '-t', topic, '-n', '1', '-r', '0'], { KAFKA_BROKERS: broker.brokers, KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: secure.caFile });
    expect(plain.code).not.toBe(0);
    expect(plain.output).toContain('(the broker did not answer TLS: is this a PLAINTEXT or SASL_PLAINTEXT listener?)');
    for (const r of [noCert, untrusted, plain]) expect(r.output).not.toContain('    at ');
  });
});
