// Secrets never leak: `vigil run` against a registry that needs basic auth, its credentials in
// SCHEMA_REGISTRY_URL. A record written with a schema id the registry does not know is
// dead-lettered with a message naming the registry; neither that message, nor any other header,
// nor anything the process prints contains the password. The embedded registry refuses requests
// without the credentials, and `vigil run` says where the registry is, credentials redacted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry } from '../../schemas/registry/server.ts';
import type { RegistryHandle } from '../../schemas/registry/server.ts';
import { AvroSerde, loadSchemaCatalog } from '../../schemas/serde.ts';
import { brokers, createTopics, uniqueName } from '../kafka.ts';
import { exited, produceRaw, readUntil, spawnVigil, topologyFile, waitFor } from '../helpers/pipeline.ts';

const PASSWORD = 'Pa55-w0rd-n0t-2-leak';
let registry: RegistryHandle;
beforeAll(async () => {
  registry = await startRegistry({ brokers: brokers(), port: 0, topic: uniqueName('_vigil_schemas'), auth: { username: 'vigil', password: PASSWORD } });
});
afterAll(async () => {
  await registry?.close();
});

describe('secrets', () => {
  it('the embedded registry refuses requests without its credentials', async () => {
    const anon = await fetch(`${registry.url}/subjects`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toMatch(/^Basic /);
    const wrong = await fetch(`${registry.url}/subjects`, { headers: { authorization: `Basic ${Buffer.from('vigil:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${registry.url}/subjects`, { headers: { authorization: `Basic ${Buffer.from(`vigil:${PASSWORD}`).toString('base64')}` } });
    expect(ok.status).toBe(200);
  });

  it('vigil run with credentials in SCHEMA_REGISTRY_URL: processes, dead-letters, and never prints or stores the password', async () => {
    const name = uniqueName('secrets');
    const input = `${name}.in`;
    const output = `${name}.out`;
    const dlq = `${name}.dlq`;
    await createTopics([input], { partitions: 1 });
    const url = registry.url.replace('://', `://vigil:${PASSWORD}@`);
    const serde = new AvroSerde({ url, catalog: loadSchemaCatalog() });
    const id = await serde.register(`${input}-value`, loadSchemaCatalog().get('vigil.telemetry.MetricSample')!);
    const good = serde.encode(id, { timestamp: 1_700_000_000_000, name: 'cpu', host: 'a', value: 1, unit: '%', tags: {} });
    const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0x00, 1, 2, 3]);
    await produceRaw([
      { topic: input, key: 'a', value: unknownId },
      { topic: input, key: 'a', value: good },
    ]);
    const file = topologyFile(`
version: 1
name: ${name}
dead_letter_topic: ${dlq}
sources:
  - { name: metrics, topic: ${input}, schema: vigil.telemetry.MetricSample, partitions: 1 }
operators:
  - { name: all, type: filter, where: value >= 0 }
sinks:
  - { name: out, from: all, topic: ${output} }
`);
    const run = spawnVigil(['run', file, '--metrics-port', '0'], { KAFKA_BROKERS: brokers().join(','), SCHEMA_REGISTRY_URL: url });
    try {
      const [dead] = await readUntil(dlq, 1, { timeoutMs: 120_000 });
      await readUntil(output, 1, { timeoutMs: 120_000 });
      const headers = JSON.stringify(dead!.headers);
      expect(headers).toContain('is not registered in the schema registry at http://***@');
      expect(headers).not.toContain(PASSWORD);
      await waitFor(() => /running/.test(run.output()), 60_000, () => `the run's start; logs: ${run.output()}`);
    } finally {
      run.kill('SIGTERM');
      await exited(run);
    }
    expect(run.output()).toContain('[vigil] schema registry at http://***@127.0.0.1:');
    expect(run.output()).not.toContain(PASSWORD);
  });
});
