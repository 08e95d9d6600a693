// Crash, fencing and scale-out tests of stateful processing on the real broker, against a
// reference computation: `vigil run` processes are killed (SIGKILL), paused (SIGSTOP) and
// restarted while they aggregate windows; the committed output is compared window by window.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopic } from '../../connectors/topic-reader.ts';
import { brokers, createTopics, uniqueName } from '../kafka.ts';
import { exited, produceRaw, spawnVigil, testRegistry, topologyFile, waitFor } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';
import { collect, windowScenario } from '../helpers/window-scenario.ts';
import type { WindowScenario } from '../helpers/window-scenario.ts';
import type { Guarantee } from '../../topology/types.ts';

const SESSION_MS = 6000;
let registry: Registry;

beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

/** Collects the output (read_committed) in the background while processes come and go. */
function watchOutput(sc: WindowScenario) {
  const values: Array<Record<string, unknown>> = [];
  const offsets = new Set<string>();
  let rereads = 0;
  const abort = new AbortController();
  let decoding = Promise.resolve();
  const reading = readTopic({
    brokers: brokers(),
    topic: sc.output,
    readCommitted: true,
    signal: abort.signal,
    onRecord: (r) => {
      const at = `${r.partition}:${r.offset}`;
      if (offsets.has(at)) rereads++;
      offsets.add(at);
      decoding = decoding.then(async () => void values.push({ ...(await registry.serde.decodeAsync(r.value!)).value, at }));
    },
  });
  const windows = () => collect(values).size;
  return {
    values,
    /** Output records the reader saw twice (a reader problem, not a duplicate in the topic). */
    rereads: () => rereads,
    windows,
    async stop() {
      abort.abort();
      await reading;
      await decoding;
    },
  };
}

/**
 * Creates the input and produces it paced over about `seconds` in the background, so that kills
 * and pauses land while there is still input to process.
 */
async function setUp(prefix: string, guarantee: Guarantee, records: number, seconds = 10) {
  const sc = await windowScenario(registry.serde, { name: uniqueName(prefix), guarantee, records });
  await createTopics([sc.input], { partitions: sc.partitions });
  const chunks = seconds * 5;
  const producing = produceRaw(sc.records, { chunk: Math.ceil(records / chunks), pauseMs: 200 });
  const file = topologyFile(sc.yaml);
  const env = { KAFKA_BROKERS: brokers().join(','), SCHEMA_REGISTRY_URL: registry.url };
  const start = (instance: string) => spawnVigil(['run', file, '--metrics-port', '0', '--session-timeout', String(SESSION_MS), '--instance', instance], env);
  return { sc, start, watch: watchOutput(sc), producing };
}

/** Waits until every expected window is out, then a little longer so duplicates would show. */
async function finish(watch: ReturnType<typeof watchOutput>, sc: WindowScenario, logs: () => string, producing: Promise<void>) {
  await producing;
  await waitFor(() => watch.windows() >= sc.expected.size, 240_000, `all ${sc.expected.size} windows (have ${watch.windows()}); logs: ${logs().slice(-1500)}`);
  await new Promise((r) => setTimeout(r, 2000));
  await watch.stop();
  return collect(watch.values);
}

function expectExactly(got: Map<string, Array<{ count: number; sum: number }>>, sc: WindowScenario) {
  const wrong: string[] = [];
  for (const [k, want] of sc.expected) {
    const list = got.get(k) ?? [];
    if (list.length !== 1 || list[0]!.count !== want.count || list[0]!.sum !== want.sum) wrong.push(`${k}: want ${JSON.stringify(want)}, got ${JSON.stringify(list)}`);
  }
  for (const k of got.keys()) if (!sc.expected.has(k)) wrong.push(`${k}: unexpected window`);
  expect(wrong.slice(0, 10)).toEqual([]);
}

const between = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

describe('stateful processing survives crashes', () => {
  it('exactly_once: 100,000 records, SIGKILLed at 3 random points and restarted, commit output equal to the reference', async () => {
    const { sc, start, watch, producing } = await setUp('eos-crash', 'exactly_once', 100_000, 40);
    let logs = '';
    const points = [between(0.1, 0.3), between(0.35, 0.55), between(0.6, 0.8)].map((f) => Math.floor(f * sc.expected.size));
    for (const [i, at] of points.entries()) {
      const child = start(`crash-${i}`);
      try {
        await waitFor(() => watch.windows() >= at, 180_000, `${at} windows before kill ${i + 1} (logs: ${child.output().slice(-1500)})`);
        child.kill('SIGKILL');
        await exited(child);
        expect(watch.windows(), 'killed mid-stream').toBeLessThan(sc.expected.size);
      } finally {
        logs += child.output();
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    }
    const last = start('final');
    try {
      const got = await finish(watch, sc, () => logs + last.output(), producing);
      if (process.env.VIGIL_KEEP_LOGS) {
        writeFileSync(process.env.VIGIL_KEEP_LOGS, logs + last.output());
        writeFileSync(`${process.env.VIGIL_KEEP_LOGS}.values.json`, JSON.stringify({ rereads: watch.rereads(), values: watch.values }));
      }
      expectExactly(got, sc);
    } finally {
      last.kill('SIGTERM');
      await exited(last);
    }
  });

  it('at_least_once: killed and restarted, no window is lost', async () => {
    const { sc, start, watch, producing } = await setUp('alos-crash', 'at_least_once', 30_000);
    const first = start('a');
    try {
      await waitFor(() => watch.windows() >= sc.expected.size * 0.3, 180_000, `first windows (logs: ${first.output().slice(-1500)})`);
      first.kill('SIGKILL');
      await exited(first);
      expect(watch.windows(), 'killed mid-stream').toBeLessThan(sc.expected.size);
    } finally {
      if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
    }
    const second = start('b');
    try {
      const got = await finish(watch, sc, () => second.output(), producing);
      const lost: string[] = [];
      for (const [k, want] of sc.expected) {
        const best = Math.max(0, ...(got.get(k) ?? []).map((e) => e.count));
        if (best < want.count) lost.push(`${k}: want ${want.count}, best emission ${best}`);
      }
      expect(lost.slice(0, 10)).toEqual([]);
    } finally {
      second.kill('SIGTERM');
      await exited(second);
    }
  });

  it('fencing: an instance paused past its session timeout cannot commit when resumed; no duplicates', async () => {
    const { sc, start, watch, producing } = await setUp('fence', 'exactly_once', 40_000);
    const zombie = start('zombie');
    let survivor: ReturnType<typeof start> | undefined;
    try {
      await waitFor(() => watch.windows() >= sc.expected.size * 0.2, 180_000, `first windows (logs: ${zombie.output().slice(-1500)})`);
      zombie.kill('SIGSTOP');
      survivor = start('survivor');
      // The survivor takes over once the zombie's session has expired, and makes progress.
      const before = watch.windows();
      await waitFor(() => watch.windows() > before + 100, 120_000, `the survivor's progress (logs: ${survivor.output().slice(-1500)})`);
      expect(watch.windows(), 'paused mid-stream').toBeLessThan(sc.expected.size);
      zombie.kill('SIGCONT');
      const got = await finish(watch, sc, () => zombie.output() + survivor!.output(), producing);
      // What must hold, whatever the zombie did once resumed (tried to commit and was fenced, or
      // rejoined the group first, depending on load): every window exactly once, so nothing of its
      // stale transaction became visible to read_committed consumers.
      expectExactly(got, sc);
    } finally {
      zombie.kill('SIGCONT');
      zombie.kill('SIGTERM');
      survivor?.kill('SIGTERM');
      await Promise.all([exited(zombie), survivor ? exited(survivor) : undefined]);
    }
  });

  it('scale-out: two instances share 4 partitions; one is killed and the survivor restores its state', async () => {
    const { sc, start, watch, producing } = await setUp('scale', 'exactly_once', 40_000);
    const a = start('a');
    const b = start('b');
    try {
      await waitFor(() => /assigned \d/.test(a.output()) && /assigned \d/.test(b.output()), 120_000, () => `both instances assigned (logs: ${a.output().slice(-1500)} ${b.output().slice(-1500)})`);
      await waitFor(() => watch.windows() >= sc.expected.size * 0.3, 180_000, `first windows (logs: ${a.output().slice(-800)} ${b.output().slice(-800)})`);
      a.kill('SIGKILL');
      await exited(a);
      expect(watch.windows(), 'killed mid-stream').toBeLessThan(sc.expected.size);
      const got = await finish(watch, sc, () => b.output(), producing);
      expectExactly(got, sc);
      // The survivor restored the killed instance's tasks from their changelogs.
      expect(b.output()).toMatch(/restored \d+ changelog records/);
    } finally {
      if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
      b.kill('SIGTERM');
      await exited(b);
    }
  });
});
