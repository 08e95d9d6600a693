// Input record headers (trace context) reach the outputs of operators that pass records through
// (filter, map), as REFERENCE.md documents; Vigil's own headers never leak into them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, uniqueName } from '../kafka.ts';
import { planYaml, produceRaw, readUntil, startRunner, testRegistry } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';

let registry: Registry;
beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

describe('headers', () => {
  it('carry through filter and map to the sink', async () => {
    const name = uniqueName('headers');
    await createTopics([`${name}.in`], { partitions: 1 });
    const sample = await registry.encoder(`${name}.in`, 'vigil.telemetry.MetricSample');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const rec = sample('a', { timestamp: 1_700_000_000_000, name: 'cpu', host: 'a', value: 3, unit: '%', tags: {} });
    await produceRaw([{ ...rec, headers: { traceparent, tenant: 'blue' } }]);
    const runner = await startRunner(
      planYaml(`
version: 1
name: ${name}
sources:
  - { name: metrics, topic: ${name}.in, schema: vigil.telemetry.MetricSample, partitions: 1 }
operators:
  - { name: positive, type: filter, where: value > 0 }
  - { name: doubled, type: map, keep_input: true, fields: { value: value * 2 } }
sinks:
  - { name: out, from: doubled, topic: ${name}.out }
`),
      registry.serde,
      { log: () => {} },
    );
    try {
      const [out] = await readUntil(`${name}.out`, 1, { timeoutMs: 120_000 });
      expect(out!.headers).toEqual({ traceparent, tenant: 'blue' });
      expect((await registry.decodeValues([out!]))[0]).toMatchObject({ host: 'a', value: 6 });
    } finally {
      await runner.stop();
    }
  });
});
