// Stateful operators under exactly_once, `vigil run` killed with SIGKILL mid-stream and restarted:
// the committed output equals a reference, record for record: for join and sequence one computed
// from the input by their documented semantics, for detect and predict (whose state is a model:
// detector histories, running sums) an uninterrupted in-process run of the same topology.
//
// The inputs are produced in event-time order, so no record is late and the results do not depend
// on how the consumer interleaves the topics (a partner of a record is in the same partition, and
// arrived before the watermark passed it): the reference is the documented semantics on lists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopic } from '../../connectors/topic-reader.ts';
import type { OutRecord } from '../../connectors/kafka-client.ts';
import { prng } from '../../connectors/telemetry-generator.ts';
import { brokers, createTopics, uniqueName } from '../kafka.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { exited, planYaml, produceRaw, spawnVigil, testRegistry, topologyFile, waitFor } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';

const PARTITIONS = 2;
const T0 = 1_700_000_000_000;
let registry: Registry;
const event = (timestamp: number, type: string, entity: string, attributes: Record<string, string>) => ({ timestamp, type, source: 'test', entity, severity: 'INFO', attributes });

beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

/** Reads output topics (read_committed) in the background; `ids()` are the records seen, with repeats. */
function watch(topics: string[], label: (topic: string, v: Record<string, unknown>) => string) {
  const seen: string[] = [];
  const abort = new AbortController();
  let decoding = Promise.resolve();
  const readers = topics.map((topic) =>
    readTopic({
      brokers: brokers(),
      topic,
      readCommitted: true,
      signal: abort.signal,
      onRecord: (r) => {
        decoding = decoding.then(async () => void seen.push(label(topic, (await registry.serde.decodeAsync(r.value!)).value)));
      },
    }),
  );
  return {
    seen,
    async stop() {
      abort.abort();
      await Promise.all(readers);
      await decoding;
    },
  };
}

/**
 * Produces the input paced over about 15 s (the engine is faster, so its output follows the
 * input), kills `vigil run` at 30 % and 65 % of the expected results, restarts it, and compares.
 */
async function crashAndFinish(yaml: string, input: () => Promise<void>, watcher: ReturnType<typeof watch>, expected: string[]) {
  const file = topologyFile(yaml);
  const env = { KAFKA_BROKERS: brokers().join(','), SCHEMA_REGISTRY_URL: registry.url };
  const start = (instance: string) => spawnVigil(['run', file, '--metrics-port', '0', '--session-timeout', '6000', '--instance', instance], env);
  const producing = input();
  let logs = '';
  for (const [i, fraction] of [0.3, 0.65].entries()) {
    const child = start(`crash-${i}`);
    try {
      const at = Math.floor(fraction * expected.length);
      await waitFor(() => watcher.seen.length >= at, 180_000, `${at} results before kill ${i + 1} (logs: ${child.output().slice(-1500)})`);
      child.kill('SIGKILL');
      await exited(child);
      expect(watcher.seen.length, 'killed mid-stream').toBeLessThan(expected.length);
    } finally {
      logs += child.output();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
  const last = start('final');
  try {
    await producing;
    await waitFor(() => watcher.seen.length >= expected.length, 240_000, `all ${expected.length} results (have ${watcher.seen.length}); logs: ${(logs + last.output()).slice(-2000)}`);
    // A little longer, so that a duplicate would show.
    await new Promise((r) => setTimeout(r, 2000));
    await watcher.stop();
    expect([...watcher.seen].sort()).toEqual([...expected].sort());
  } finally {
    last.kill('SIGTERM');
    await exited(last);
  }
}

describe('correlation survives SIGKILL under exactly_once', () => {
  it('a left join: every pair and every unmatched left record exactly once', async () => {
    const name = uniqueName('join-crash');
    const [lt, rt] = [`${name}.left`, `${name}.right`];
    await createTopics([lt, rt], { partitions: PARTITIONS });
    const left = await registry.encoder(lt, 'vigil.telemetry.Event');
    const right = await registry.encoder(rt, 'vigil.telemetry.Event');
    const rnd = prng(11);
    const recs: Array<{ side: 'L' | 'R'; key: string; t: number; id: string }> = [];
    for (let i = 0; i < 12_000; i++) recs.push({ side: rnd() < 0.5 ? 'L' : 'R', key: `k${Math.floor(rnd() * 300)}`, t: T0 + i * 50, id: `${i}` });
    const expected: string[] = [];
    const WINDOW = 2000;
    for (const l of recs.filter((r) => r.side === 'L')) {
      const partners = recs.filter((r) => r.side === 'R' && r.key === l.key && r.t >= l.t - WINDOW && r.t <= l.t + WINDOW);
      for (const r of partners) expected.push(`pair ${l.id}+${r.id}`);
      if (partners.length === 0) expected.push(`alone ${l.id}`);
    }
    const encode = (r: (typeof recs)[number]): OutRecord => (r.side === 'L' ? left : right)(r.key, event(r.t, r.side, r.key, { id: r.id }));
    // Then, on every partition of both topics, a record an hour later closes every window (their keys never meet).
    const tail: OutRecord[] = [];
    for (let p = 0; p < PARTITIONS; p++)
      for (const [enc, side] of [[left, 'L'], [right, 'R']] as const)
        tail.push(enc(`end-${side}-${p}`, event(T0 + 3_600_000 * 2, side, `end-${side}-${p}`, { id: 'end' }), { partition: p }));
    const yaml = `
version: 1
name: ${name}
guarantee: exactly_once
commit_interval: 100ms
sources:
  - { name: lefts, topic: ${lt}, schema: vigil.telemetry.Event, key: [entity], timestamp: timestamp, partitions: ${PARTITIONS} }
  - { name: rights, topic: ${rt}, schema: vigil.telemetry.Event, key: [entity], timestamp: timestamp, partitions: ${PARTITIONS} }
operators:
  - name: j
    type: join
    kind: left
    from: [lefts, rights]
    left_key: [entity]
    right_key: [entity]
    within: ${WINDOW}ms
    fields:
      l: left.attributes["id"] ?? ""
      r: right.attributes["id"] ?? "-"
sinks:
  - { name: out, topic: ${name}.out }
`;
    const watcher = watch([`${name}.out`], (_t, v) => (v.r === '-' ? `alone ${v.l as string}` : `pair ${v.l as string}+${v.r as string}`));
    await crashAndFinish(yaml, () => produceRaw([...recs.map(encode), ...tail], { chunk: 300, pauseMs: 400 }), watcher, expected);
  });

  it('a sequence: every response within 5 s matched and every request without one expired, exactly once', async () => {
    const name = uniqueName('seq-crash');
    const topic = `${name}.http`;
    await createTopics([topic], { partitions: PARTITIONS });
    const encode = await registry.encoder(topic, 'vigil.telemetry.Event');
    const rnd = prng(23);
    const events: Array<{ t: number; type: string; rid: string }> = [];
    const expected: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const t = T0 + i * 100;
      const rid = `r${i}`;
      events.push({ t, type: 'request', rid });
      const u = rnd();
      if (u < 0.8) {
        const d = Math.floor(rnd() * 5000);
        events.push({ t: t + d, type: 'response', rid });
        expected.push(`matched ${rid} ${d}`);
      } else {
        if (u < 0.9) events.push({ t: t + 6000 + Math.floor(rnd() * 3000), type: 'response', rid });
        expected.push(`expired ${rid}`);
      }
    }
    events.sort((a, b) => a.t - b.t);
    const records: OutRecord[] = events.map((e) => encode(e.rid, event(e.t, e.type, 'api', { request_id: e.rid })));
    for (let p = 0; p < PARTITIONS; p++) records.push(encode(`end-${p}`, event(T0 + 3_600_000 * 2, 'tick', 'api', { request_id: `end-${p}` }), { partition: p }));
    const yaml = `
version: 1
name: ${name}
guarantee: exactly_once
commit_interval: 100ms
sources:
  - { name: http, topic: ${topic}, schema: vigil.telemetry.Event, timestamp: timestamp, partitions: ${PARTITIONS} }
operators:
  - name: rr
    type: sequence
    from: [http, http]
    first_key: [attributes.request_id]
    then_key: [attributes.request_id]
    first_where: type == "request"
    then_where: type == "response"
    within: 5s
    fields:
      rid: first.attributes["request_id"] ?? ""
      delay: then.timestamp - first.timestamp
sinks:
  - { name: matched, from: rr, topic: ${name}.matched }
  - { name: expired, from: rr.expired, topic: ${name}.expired }
`;
    const watcher = watch([`${name}.matched`, `${name}.expired`], (t, v) =>
      t.endsWith('.matched') ? `matched ${v.rid as string} ${v.delay as number}` : `expired ${(v.first as { attributes: Record<string, string> }).attributes.request_id}`,
    );
    await crashAndFinish(yaml, () => produceRaw(records, { chunk: 300, pauseMs: 400 }), watcher, expected);
  });
});

describe('analysis state survives SIGKILL under exactly_once', () => {
  it('detect (novelty, ewma) and predict: every score and prediction equals an uninterrupted run, exactly once', async () => {
    const name = uniqueName('analysis-crash');
    const topic = `${name}.metrics`;
    await createTopics([topic], { partitions: PARTITIONS });
    const encode = await registry.encoder(topic, 'vigil.telemetry.MetricSample');
    const rnd = prng(31);
    // 16 hosts x 500 samples, 10 s apart: a noisy level with, per host, a level shift and spikes.
    const HOSTS = 16;
    const samples: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 500; i++)
      for (let h = 0; h < HOSTS; h++) {
        const shift = i > 250 + h * 10 ? 20 : 0;
        const spike = rnd() < 0.01 ? 40 : 0;
        samples.push({ timestamp: T0 + i * 10_000, name: 'cpu', host: `h${h}`, value: 50 + shift + spike + 5 * (rnd() - 0.5) + 0.02 * i, unit: null, tags: {} });
      }
    const yaml = `
version: 1
name: ${name}
guarantee: exactly_once
commit_interval: 100ms
sources:
  - { name: metrics, topic: ${topic}, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp, partitions: ${PARTITIONS} }
operators:
  - { name: novelty, type: detect, from: metrics, value: value, history: 200 }
  - { name: ewma, type: detect, from: metrics, value: value, detector: ewma }
  - { name: trend, type: predict, from: metrics, value: value, points: 40, horizon: 10m, threshold: 90 }
sinks:
  - { name: n, from: novelty, topic: ${name}.novelty }
  - { name: e, from: ewma, topic: ${name}.ewma }
  - { name: p, from: trend, topic: ${name}.trend }
`;
    const label = (topic: string, v: Record<string, unknown>): string =>
      topic.endsWith('.trend')
        ? `p ${v.host as string} ${v.timestamp as number} ${JSON.stringify([v.predicted, v.slope, v.fit_error, v.eta_ms])}`
        : `${topic.slice(topic.lastIndexOf('.') + 1)} ${v.host as string} ${v.timestamp as number} ${JSON.stringify([v.anomaly_score, v.anomalous, v.expected, v.lower, v.upper])}`;
    // The uninterrupted run, in-process, on the same records in the same order per host.
    const expected: string[] = [];
    const driver = new TestDriver(planYaml(yaml), { retain: false, listener: { sink: (s, r) => void expected.push(label(`${name}.${{ n: 'novelty', e: 'ewma', p: 'trend' }[s]!}`, r.value as Record<string, unknown>)) } });
    for (const v of samples) driver.pipe('metrics', v, { key: v.host as string });
    expect(expected.length).toBe(3 * samples.length);
    expect(expected.filter((e) => e.includes(',true,')).length, 'some records are flagged anomalous').toBeGreaterThan(0);
    const watcher = watch([`${name}.novelty`, `${name}.ewma`, `${name}.trend`], label);
    await crashAndFinish(yaml, () => produceRaw(samples.map((v) => encode(v.host as string, v)), { chunk: 200, pauseMs: 400 }), watcher, expected);
  });
});
