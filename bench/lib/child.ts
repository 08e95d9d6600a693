// Entry of the benchmark's child processes (forked by child-process.ts), so that what is measured
// (CPU, memory, profile) belongs to the engine alone and not to the load generator or reader:
//
//   engine     runs a Runner for a benchmark topology (as `vigil run` does)
//   pipe       the raw kafkajs consume-and-produce pipe: the client's own ceiling, with the
//              Runner's consumer and producer settings and batching (connectors/kafka-client.ts)
//   core-keys  one point of the in-process key-count scaling curve, in a fresh heap
//
// Protocol (IPC): the child sends {event: 'ready'} once running; the parent sends {id, cmd, ...}
// and gets {id, ok, result} or {id, ok: false, error}. Commands: sample, profile-start,
// profile-stop, stop (replies, then exits).
import { Session } from 'node:inspector/promises';
import { writeFile } from 'node:fs/promises';
import { findSourceMap } from 'node:module';
import { KafkaClient } from '../../connectors/kafka-client.ts';
import type { OutRecord } from '../../connectors/kafka-client.ts';
import { startRunner } from '../../runtime/runner.ts';
import type { Runner } from '../../runtime/runner.ts';
import type { ManagedStore } from '../../runtime/stores.ts';
import { AvroSerde, loadSchemaCatalog } from '../../schemas/serde.ts';
import { loadBenchPlan } from './topologies.ts';
import { runKeyPoint } from './scaling.ts';
import type { KeyPointSpec } from './scaling.ts';

export interface EngineChildConfig {
  mode: 'engine';
  file: string;
  prefix: string;
  brokers: string[];
  registryUrl: string;
  verbose?: boolean;
}

export interface PipeChildConfig {
  mode: 'pipe';
  brokers: string[];
  inTopics: string[];
  outTopic: string;
  group: string;
  /** Partitions processed concurrently (the Runner's default is 2). */
  concurrency: number;
  /**
   * Share of the consumed records that are produced (1 = every record). A pipe matched to a
   * workload produces as many records per consumed record as the workload did.
   */
  forward: number;
}

export interface KeysChildConfig {
  mode: 'core-keys';
  spec: KeyPointSpec;
}

export type ChildConfig = EngineChildConfig | PipeChildConfig | KeysChildConfig;

export interface ChildSample {
  /** Wall clock (ms). */
  t: number;
  /** process.cpuUsage() of the child, microseconds. */
  cpuUserUs: number;
  cpuSystemUs: number;
  rss: number;
  /** Peak resident set size so far (bytes). */
  maxRss: number;
  heapUsed: number;
  /** Records consumed and produced so far (engine: every topic it writes, changelogs included). */
  consumed: number;
  produced: number;
  /** Operator stores (engine, when asked): approximate bytes and entries. */
  stateBytes?: number;
  stateEntries?: number;
}

type Request = { id: number; cmd: 'sample'; state?: boolean } | { id: number; cmd: 'profile-start' } | { id: number; cmd: 'profile-stop'; file: string } | { id: number; cmd: 'stop' };

/**
 * Rewrites the profile's positions in TypeScript files (which tsx transpiled) to the original
 * lines and columns, from the modules' source maps (the child runs with --enable-source-maps).
 */
function remapToSources(profile: { nodes: Array<{ callFrame: { url: string; lineNumber: number; columnNumber: number } }> }): void {
  for (const { callFrame: f } of profile.nodes) {
    if (!f.url.startsWith('file:') || !f.url.endsWith('.ts') || f.lineNumber < 0) continue;
    const entry = findSourceMap(f.url)?.findEntry(f.lineNumber, f.columnNumber) as { originalLine?: number; originalColumn?: number } | undefined;
    if (entry?.originalLine === undefined) continue;
    f.lineNumber = entry.originalLine;
    f.columnNumber = entry.originalColumn ?? 0;
  }
}

function send(msg: unknown): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(msg, undefined, undefined, () => resolve());
  });
}

interface Counts {
  consumed: number;
  produced: number;
}

async function counterTotal(c: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await c.get()).values.reduce((a, v) => a + v.value, 0);
}

async function sample(counts: () => Promise<Counts>, stores?: () => ManagedStore[], state = false): Promise<ChildSample> {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  const s: ChildSample = {
    t: Date.now(),
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rss: mem.rss,
    maxRss: process.resourceUsage().maxRSS * 1024,
    heapUsed: mem.heapUsed,
    ...(await counts()),
  };
  if (state && stores) {
    const list = stores();
    s.stateBytes = list.reduce((a, st) => a + st.approxBytes(), 0);
    s.stateEntries = list.reduce((a, st) => a + st.size, 0);
  }
  return s;
}

async function startPipe(c: PipeChildConfig): Promise<{ stop: () => Promise<void>; counts: () => Promise<Counts> }> {
  const counts: Counts = { consumed: 0, produced: 0 };
  let credit = 0;
  const client = new KafkaClient({ brokers: c.brokers, clientId: 'vigil-bench-pipe' });
  const producer = client.producer();
  await producer.connect();
  const consumer = client.consumer({ groupId: c.group });
  await consumer.subscribe(c.inTopics, true);
  await consumer.run({
    concurrency: c.concurrency,
    onAssignment: () => {},
    eachBatch: async (batch) => {
      const records = batch.records;
      const out: OutRecord[] = [];
      for (let i = 0; i < records.length; i++) {
        credit += c.forward;
        if (credit < 1) continue;
        credit -= 1;
        const r = records[i]!;
        out.push({ topic: c.outTopic, key: r.key, value: r.value, timestamp: r.timestamp });
      }
      await producer.send(out);
      await consumer.commit([{ topic: batch.topic, partition: batch.partition, offset: batch.nextOffset }]);
      counts.consumed += records.length;
      counts.produced += out.length;
    },
  });
  return {
    counts: async () => ({ ...counts }),
    stop: async () => {
      await consumer.stop();
      await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
    },
  };
}

async function startEngine(c: EngineChildConfig): Promise<{ stop: () => Promise<void>; runner: Runner }> {
  const plan = loadBenchPlan(c.file, c.prefix);
  const serde = new AvroSerde({ url: c.registryUrl, catalog: loadSchemaCatalog() });
  const log = (l: string) => {
    if (c.verbose) process.stderr.write(`[engine] ${l}\n`);
    // The Runner's consumer gave up: nothing more will be processed; tell the parent at once.
    const stopped = /consumer stopped after: (.*)$/.exec(l);
    if (stopped) void send({ event: 'fatal', error: stopped[1] });
  };
  const runner = await startRunner({ plan, brokers: c.brokers, serde, log });
  return { runner, stop: () => runner.stop() };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
  if (config.mode === 'core-keys') {
    const result = await runKeyPoint(config.spec);
    await send({ event: 'result', result });
    process.exit(0);
  }
  let stop: () => Promise<void>;
  let counts: () => Promise<Counts>;
  let stores: (() => ManagedStore[]) | undefined;
  if (config.mode === 'engine') {
    const e = await startEngine(config);
    stop = e.stop;
    stores = () => e.runner.operatorStores();
    counts = async () => ({ consumed: await counterTotal(e.runner.metrics.consumed), produced: await counterTotal(e.runner.metrics.produced) });
  } else {
    ({ stop, counts } = await startPipe(config));
  }
  let session: Session | undefined;
  process.on('message', (raw) => {
    const req = raw as Request;
    void (async () => {
      try {
        let result: unknown;
        switch (req.cmd) {
          case 'sample':
            result = await sample(counts, stores, req.state);
            break;
          case 'profile-start':
            session = new Session();
            session.connect();
            await session.post('Profiler.enable');
            await session.post('Profiler.setSamplingInterval', { interval: 500 });
            await session.post('Profiler.start');
            break;
          case 'profile-stop': {
            if (!session) throw new Error('no profile is running');
            const { profile } = await session.post('Profiler.stop');
            remapToSources(profile);
            await writeFile(req.file, JSON.stringify(profile));
            session.disconnect();
            session = undefined;
            break;
          }
          case 'stop': {
            const s = await sample(counts, stores, true);
            await stop();
            await send({ id: req.id, ok: true, result: s });
            process.exit(0);
          }
        }
        await send({ id: req.id, ok: true, result });
      } catch (err) {
        await send({ id: req.id, ok: false, error: (err as Error).stack ?? String(err) });
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
  await send({ event: 'ready' });
}

main().catch(async (err: unknown) => {
  await send({ event: 'error', error: (err as Error).stack ?? String(err) });
  process.exit(1);
});
