// Schema safety for the topics a topology reads: once it runs, the registry refuses (409) a
// producer schema its reader schema cannot read, which would otherwise be accepted under the
// default BACKWARD level and get every record written with it dead-lettered. An evolution the
// reader can read (a field added with a default) is still accepted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSchemaCatalog } from '../../schemas/serde.ts';
import { createTopics, uniqueName } from '../kafka.ts';
import { planYaml, startRunner, testRegistry } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';

let registry: Registry;
beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

async function post(subject: string, schema: unknown): Promise<{ status: number; body: { id?: number; error_code?: number; message?: string } }> {
  const res = await fetch(`${registry.url}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify(schema) }),
  });
  return { status: res.status, body: (await res.json()) as { id?: number; error_code?: number; message?: string } };
}

describe('subjects a topology reads', () => {
  it('refuse a writer schema the reader cannot read; accept one it can', async () => {
    const name = uniqueName('readsub');
    const topic = `${name}.in`;
    await createTopics([topic], { partitions: 1 });
    const logs: string[] = [];
    const runner = await startRunner(
      planYaml(`
version: 1
name: ${name}
sources:
  - { name: metrics, topic: ${topic}, schema: vigil.telemetry.MetricSample, partitions: 1 }
operators:
  - { name: all, type: filter, where: value >= 0 }
sinks:
  - { name: out, from: all, topic: ${name}.out }
`),
      registry.serde,
      { log: (l) => void logs.push(l) },
    );
    await runner.stop();
    expect(logs.join('\n')).toContain(`registry subject ${topic}-value: compatibility BACKWARD -> FULL_TRANSITIVE, with vigil.telemetry.MetricSample registered`);

    const sample = loadSchemaCatalog().get('vigil.telemetry.MetricSample')! as { fields: Array<{ name: string }> };
    const withoutValue = { ...sample, fields: sample.fields.filter((f) => f.name !== 'value') };
    const refused = await post(`${topic}-value`, withoutValue);
    expect(refused.status).toBe(409);
    expect(refused.body.error_code).toBe(409);
    expect(refused.body.message).toMatch(/value/);

    const evolved = { ...sample, fields: [...sample.fields, { name: 'site', type: ['null', 'string'], default: null }] };
    const accepted = await post(`${topic}-value`, evolved);
    expect(accepted.status).toBe(200);
    expect(accepted.body.id).toBeGreaterThan(0);
  });
});
