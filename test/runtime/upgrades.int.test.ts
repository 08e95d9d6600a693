// Safe topology upgrades on the real broker: state written by one version of a topology is
// restored by the next only when its layout allows. count -> sum under the same name is refused
// (it would have emitted 55 where 110 was right); an aggregation added at the end migrates the
// open window (the count carries on, the new aggregation starts from the upgrade) and survives a
// second restart with changelog values of both formats; tumbling -> session is refused, and
// --reset-state starts that operator empty.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateLayoutError } from '../../runtime/state-layouts.ts';
import { KafkaClient } from '../../connectors/kafka-client.ts';
import type { ConsumedRecord } from '../../connectors/kafka-client.ts';
import { readTopic } from '../../connectors/topic-reader.ts';
import { brokers, createTopics, uniqueName } from '../kafka.ts';
import { planYaml, produceRaw, readUntil, startRunner, testRegistry, waitFor } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';

let registry: Registry;
beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

function topology(name: string, window: string, aggregations: string): string {
  return `
version: 1
name: ${name}
guarantee: exactly_once
sources:
  - { name: metrics, topic: ${name}.in, schema: vigil.telemetry.MetricSample, partitions: 1, timestamp: timestamp }
operators:
  - name: agg
    type: aggregate
    from: metrics
    group_by: [host]
    window: ${window}
    aggregations:
${aggregations}
sinks:
  - { name: out, from: agg, topic: ${name}.out }
`;
}

const TUMBLING = '{ type: tumbling, size: 1m }';
const COUNT = '      total: { fn: count }';
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % 60_000);

describe('state layouts across topology upgrades', () => {
  it('count -> sum is refused; an added aggregation migrates the open window; tumbling -> session needs --reset-state', async () => {
    const name = uniqueName('upgrade');
    await createTopics([`${name}.in`], { partitions: 1 });
    const sample = await registry.encoder(`${name}.in`, 'vigil.telemetry.MetricSample');
    const at = (ms: number, value: number) => sample('a', { timestamp: T0 + ms, name: 'cpu', host: 'a', value, unit: '%', tags: {} });
    const logs: string[] = [];
    const log = (l: string): void => void logs.push(l);

    // v1 counts 5 records of the window [T0, T0+1m), which stays open.
    let runner = await startRunner(planYaml(topology(name, TUMBLING, COUNT)), registry.serde, { log });
    await produceRaw([1, 2, 3, 4, 5].map((i) => at(i * 1000, 11)));
    await committed(name, 5);
    await runner.stop();

    // v2: the same aggregation name now sums: refused, naming the operator and the change.
    const sum = planYaml(topology(name, TUMBLING, '      total: { fn: sum, field: value }'));
    const refused = await startRunner(sum, registry.serde, { log }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(StateLayoutError);
    expect((refused as Error).message).toContain(`refusing to start topology '${name}'`);
    expect((refused as Error).message).toContain("operator 'agg' (aggregate): its state was written under another layout: store windows: slot count -> slot sum:value");
    expect((refused as Error).message).toContain('--reset-state <operator>');

    // v3: count kept, max added: migrated; 5 more records in the same window.
    const added = planYaml(topology(name, TUMBLING, `${COUNT}\n      peak: { fn: max, field: value }`));
    runner = await startRunner(added, registry.serde, { log });
    expect(logs.join('\n')).toContain("state of 'agg' migrated: store windows: slot max:value added, old values read by Avro resolution");
    await produceRaw([6, 7, 8, 9, 10].map((i) => at(i * 1000, 22)));
    await committed(name, 10);
    await runner.stop();
    // Restarted again: the changelog holds values of both formats; restore reads each by its offset.
    runner = await startRunner(added, registry.serde, { log });
    await produceRaw([at(5 * 60_000, 1)]); // closes the window
    const [closed] = await registry.decodeValues(await readUntil(`${name}.out`, 1, { timeoutMs: 120_000, readCommitted: true }));
    await runner.stop();
    expect(closed).toMatchObject({ host: 'a', total: 10, peak: 22 });

    // v4: session windows: the window store's state would be dropped silently: refused...
    const session = planYaml(topology(name, '{ type: session, gap: 1m }', `${COUNT}\n      peak: { fn: max, field: value }`));
    const again = await startRunner(session, registry.serde, { log }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((again as Error).message).toContain("operator 'agg' (aggregate): its state was written under another layout: store windows removed (its state would be dropped); store sessions added (starts empty)");
    // ...unless the user resets it: it starts empty, and later starts keep its new layout.
    runner = await startRunner(session, registry.serde, { log, resetState: ['agg'] });
    expect(logs.join('\n')).toContain("state of 'agg' reset (--reset-state): 1 entry dropped; it had store windows removed");
    await produceRaw([at(5 * 60_000 + 1000, 7)]);
    await committed(name, 12);
    await runner.stop();
    // A later start keeps the reset state: the session holds only the record after the reset.
    runner = await startRunner(session, registry.serde, { log });
    await produceRaw([at(60 * 60_000, 1)]); // closes that session
    const out = await registry.decodeValues(await readUntil(`${name}.out`, 2, { timeoutMs: 120_000, readCommitted: true }));
    await runner.stop();
    expect(out[1]).toMatchObject({ host: 'a', total: 1, peak: 7 });
  });
});

/** Waits until the topology's group has committed `offset` on its input (its state includes those records). */
async function committed(name: string, offset: number): Promise<void> {
  const admin = new KafkaClient({ brokers: brokers() }).admin();
  try {
    await waitFor(async () => Number((await admin.groupOffsets(name, `${name}.in`))[0]?.offset ?? -1) >= offset, 120_000, `group ${name} to commit offset ${offset}`);
  } finally {
    await admin.disconnect();
  }
}

describe('starting offsets per source', () => {
  it('start: latest skips what the topic held before the first start; a restart resumes at the committed offset', async () => {
    const name = uniqueName('latest');
    await createTopics([`${name}.in`], { partitions: 1 });
    const sample = await registry.encoder(`${name}.in`, 'vigil.telemetry.MetricSample');
    const rec = (value: number) => sample('a', { timestamp: Date.now(), name: 'cpu', host: 'a', value, unit: '%', tags: {} });
    await produceRaw([rec(1), rec(1), rec(1)]);
    const plan = planYaml(`
version: 1
name: ${name}
sources:
  - { name: metrics, topic: ${name}.in, schema: vigil.telemetry.MetricSample, partitions: 1, start: latest }
operators:
  - { name: all, type: filter, where: value >= 0 }
sinks:
  - { name: out, from: all, topic: ${name}.out }
`);
    let runner = await startRunner(plan, registry.serde, { log: () => {} });
    // Where "latest" lands is settled when the consumer first fetches: feed records until one comes out.
    let feeding = true;
    const feeder = (async () => {
      while (feeding) {
        await produceRaw([rec(2)]);
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    await untilValue(`${name}.out`, 2);
    feeding = false;
    await feeder;
    await runner.stop();
    // Produced while stopped: read on restart (committed offsets win over `start`).
    await produceRaw([rec(3)]);
    runner = await startRunner(plan, registry.serde, { log: () => {} });
    await untilValue(`${name}.out`, 3);
    await runner.stop();
    const values = (await registry.decodeValues(await readAllOf(`${name}.out`))).map((v) => v.value);
    expect(values).not.toContain(1);
    expect(values).toContain(2);
    expect(values).toContain(3);
  });
});

/** Reads a topic from the beginning until a record with this `value` field arrives. */
async function untilValue(topic: string, value: number): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 120_000);
  let found = false;
  await readTopic({
    brokers: brokers(),
    topic,
    signal: abort.signal,
    onRecord: (r) => {
      if (r.value !== null && registry.serde.decode(r.value).value.value === value) {
        found = true;
        abort.abort();
      }
    },
  });
  clearTimeout(timer);
  expect(found, `a record with value ${value} in ${topic}`).toBe(true);
}

async function readAllOf(topic: string): Promise<ConsumedRecord[]> {
  return readTopic({ brokers: brokers(), topic, untilEnd: true });
}
