// One benchmark run on the real broker, for an engine topology or the raw kafkajs pipe:
//
//   1. load     the input backlog is generated and Avro-encoded in memory, then produced while
//               nothing consumes it (production is measured apart from consumption);
//   2. drain    the engine (a child process) starts and consumes the backlog. Progress is the
//               engine's count of processed records, polled every 50 ms; the rate counts from
//               the first batch to the one that reaches the end (start-up, group join and
//               restore are excluded). Engine CPU (process.cpuUsage in the child) and broker CPU
//               (/proc/<pid>/stat) are read at those same two moments. A drain shorter than
//               `minDrainSeconds` is too coarse for 50 ms polls: the engine is stopped, a larger
//               backlog (event times continuing forward) is produced, and a new engine process
//               drains that one instead;
//   3. latency  the engine keeps running while live records (event time = send time) are produced
//               at a fixed rate below capacity; a read_committed reader times each output.
//
// runMatchedPipe() then gives the workload its own ceiling: the raw pipe over the same input
// topics, producing as many records per consumed record as the engine did.
import { SCHEMA_OF_KIND } from '../../connectors/telemetry-generator.ts';
import type { TelemetryKind } from '../../connectors/telemetry-generator.ts';
import type { AdminClient, BatchProducer } from '../../connectors/kafka-client.ts';
import type { AvroSerde } from '../../schemas/serde.ts';
import type { RecordSchema } from '../../kernel/operator.ts';
import type { ChildConfig, ChildSample } from './child.ts';
import { startChild } from './child-process.ts';
import type { ChildHandle } from './child-process.ts';
import { generateLoad, produceLoad, progressBar } from './load.ts';
import type { EncodedLoad, LoadSpec } from './load.ts';
import { startLatencyReader } from './latency.ts';
import { processCpuSeconds } from './proc.ts';
import { MB, cpuSecondsPerMillion, drainRate, recordsPerCoreSecond, summarize } from './stats.ts';
import type { DrainRate, LatencySummary, ProgressSample } from './stats.ts';
import { spanFor } from './scaling.ts';

export interface KafkaEnv {
  brokers: string[];
  /** The broker JVM's pid, when known (local broker, or --broker-pid). */
  brokerPid?: number;
  registryUrl: string;
  serde: AvroSerde;
  catalog: Map<string, RecordSchema>;
  admin: AdminClient;
  producer: BatchProducer;
  log: (line: string) => void;
  verbose: boolean;
}

export interface TargetInput {
  topic: string;
  partitions: number;
  schemaName: string;
  /** Share of the records this input gets (0: none in the live phase). */
  share: number;
  /** A fixed number of records per backlog instead of a share (a table's rows: one per key). */
  fixed?: number;
}

/** What to run: the inputs it reads, the outputs to time, its group, and the child to start. */
export interface KafkaTarget {
  label: string;
  inputs: TargetInput[];
  outputs: string[];
  /** Output topics the harness creates (the Runner creates its own). */
  createOutputs?: Array<{ topic: string; partitions: number; configs?: Record<string, string> }>;
  group: string;
  child: ChildConfig;
}

/** A backlog: the load generator's settings for every input of a workload (`kind` comes from the input). */
export interface LoadSettings extends Omit<LoadSpec, 'kind'> {
  /** Window size of the workload (startTime is aligned to it, the span covers whole windows). */
  windowMs: number;
  /** Records per produce request of the load generator. */
  batchSize: number;
}

export interface LatencySettings {
  seconds: number;
  /** Records per second; undefined = `load` x the measured drain rate. */
  rate?: number;
  load: number;
}

export interface DrainSettings {
  /** A drain shorter than this is redone with a larger backlog. */
  minSeconds: number;
  /** The larger backlog is sized to drain in about this long. */
  targetSeconds: number;
}

export interface EngineFigures {
  cpuSeconds: number;
  cpuSecondsPerMillion: number;
  /** Records per CPU-second of the engine process: the throughput of one fully busy core. */
  recordsPerCoreSecond: number;
  /** Average cores the engine process kept busy during the drain. */
  coresUsed: number;
  peakRssBytes: number;
  stateBytes?: number;
  stateEntries?: number;
  stateBytesPerKey?: number;
}

export interface KafkaRunResult {
  label: string;
  /** Records in the measured backlog. */
  records: number;
  avgRecordBytes: number;
  produce: { records: number; seconds: number; recordsPerSec: number };
  drain: { seconds: number; records: number; recordsPerSec: number; mbPerSec: number; redone: boolean };
  /** Records produced (outputs, changelogs, dead letters) per record consumed during the drain. */
  forward: number;
  /** The raw pipe over the same inputs with the same `forward`, measured right after the drain. */
  matchedPipe?: MatchedPipeResult;
  engine: EngineFigures;
  broker: { cpuSeconds?: number; cpuSecondsPerMillion?: number };
  latency: { rate: number; seconds: number; sent: number; outputs: number; ms: LatencySummary };
}

export interface MatchedPipeResult {
  forward: number;
  records: number;
  seconds: number;
  recordsPerSec: number;
  cpuSecondsPerMillion: number;
}

export function kindOfSchema(name: string): TelemetryKind {
  for (const [k, v] of Object.entries(SCHEMA_OF_KIND)) if (v === name) return k as TelemetryKind;
  throw new Error(`no telemetry generator for schema ${name}`);
}

async function endOffsets(admin: AdminClient, topics: string[]): Promise<number> {
  let n = 0;
  for (const t of topics) for (const o of await admin.offsets(t)) n += Number(o.high);
  return n;
}

/** The latency phase goes on (up to twice its length) until this many outputs were timed. */
const MIN_TIMED_OUTPUTS = 500;
/** How often the harness samples the child's processed-record count (ms). */
const POLL_MS = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Generates and encodes each input's share of the load (before anything is timed). */
export async function prepareLoads(env: KafkaEnv, target: KafkaTarget, s: LoadSettings): Promise<EncodedLoad[]> {
  const loads: EncodedLoad[] = [];
  for (const [i, input] of target.inputs.entries()) {
    const schema = env.catalog.get(input.schemaName);
    if (!schema) throw new Error(`schema ${input.schemaName} is not in the catalog`);
    const id = await env.serde.register(`${input.topic}-value`, schema);
    const { windowMs: _w, batchSize: _b, ...common } = s;
    const records = input.fixed ?? Math.max(1, Math.round(s.records * input.share));
    const spec: LoadSpec = { ...common, kind: kindOfSchema(input.schemaName), records, seed: s.seed + i };
    loads.push(generateLoad(spec, (v) => env.serde.encode(id, v)));
  }
  return loads;
}

/** The settings of a further backlog of `records`, with event times after those of `s`. */
export function nextBacklog(s: LoadSettings, records: number): LoadSettings {
  const after = s.startTime + s.spanMs + 1;
  return {
    ...s,
    records,
    seed: s.seed + 1000,
    startTime: Math.ceil(after / s.windowMs) * s.windowMs,
    spanMs: spanFor(records, s.keys, s.windowMs),
  };
}

async function produceBacklog(env: KafkaEnv, target: KafkaTarget, loads: EncodedLoad[], batchSize: number): Promise<{ records: number; seconds: number }> {
  const total = loads.reduce((a, l) => a + l.values.length, 0);
  const bar = progressBar(`load ${target.label}`, total);
  const t0 = Date.now();
  let before = 0;
  for (const [i, load] of loads.entries()) {
    const base = before;
    await produceLoad({ producer: env.producer, topic: target.inputs[i]!.topic, load, rate: 0, batchSize, onProgress: (n) => bar.update(base + n) });
    before += load.values.length;
  }
  bar.stop();
  return { records: total, seconds: (Date.now() - t0) / 1000 };
}

interface Snap {
  engine: ChildSample;
  broker?: number;
}

interface DrainMeasure {
  /** Undefined when the whole backlog went within one poll (too short to time). */
  drain: DrainRate | undefined;
  first: Snap;
  last: Snap;
}

/**
 * Polls the child's count of processed records (the engine's `vigil_records_consumed_total`, the
 * pipe's own count) every 50 ms until `total`, or `cap` records past the first progress. Both ends
 * are batch boundaries of the same kind, so what the first sample leaves out at the start matches
 * what the last one leaves out at the end. (Committed offsets would lag: the Runner commits them
 * every commit_interval, not per batch.)
 */
async function measureDrain(env: KafkaEnv, child: ChildHandle, label: string, total: number, cap?: number): Promise<DrainMeasure> {
  const samples: ProgressSample[] = [];
  const bar = progressBar(`drain ${label}`, total);
  let first: Snap | undefined;
  let last: Snap | undefined;
  let lastProgress = Date.now();
  try {
    for (;;) {
      const engine = await child.sample();
      const broker = env.brokerPid ? processCpuSeconds(env.brokerPid) : undefined;
      const n = engine.consumed;
      const t = engine.t;
      if (n > (samples.at(-1)?.n ?? 0)) lastProgress = t;
      samples.push({ t, n });
      bar.update(n);
      if (!first && n > 0) first = { engine, broker };
      if (first && (n >= total || (cap !== undefined && n - first.engine.consumed >= cap))) {
        last = { engine, broker };
        break;
      }
      if (child.failure) throw new Error(`${label}: ${child.failure} (${n} of ${total} records processed)`);
      if (t - lastProgress > 60_000) throw new Error(`${label}: no progress for 60 s (${n} of ${total} records processed)`);
      await sleep(POLL_MS);
    }
  } finally {
    bar.stop();
  }
  return { drain: drainRate(samples, total, cap), first: first!, last: last! };
}

/** CPU seconds (user + system) the child used between two samples. */
function cpuSecondsBetween(first: Snap, last: Snap): number {
  return (last.engine.cpuUserUs + last.engine.cpuSystemUs - first.engine.cpuUserUs - first.engine.cpuSystemUs) / 1e6;
}

function timed(m: DrainMeasure, label: string): DrainMeasure & { drain: DrainRate } {
  if (!m.drain) throw new Error(`${label}: the drain finished within one poll; use more records`);
  return m as DrainMeasure & { drain: DrainRate };
}

export async function runKafkaTarget(
  env: KafkaEnv,
  target: KafkaTarget,
  settings: LoadSettings,
  latency: LatencySettings,
  opts: { keys: number; drain: DrainSettings; profileFile?: string; matchedPipe?: boolean },
): Promise<KafkaRunResult> {
  const { admin, log } = env;
  const inTopics = target.inputs.map((i) => i.topic);
  await admin.createTopics([...target.inputs.map((i) => ({ topic: i.topic, partitions: i.partitions })), ...(target.createOutputs ?? [])]);

  // 1. load
  let current = settings;
  let loads = await prepareLoads(env, target, current);
  let produced = await produceBacklog(env, target, loads, settings.batchSize);
  let base = 0;
  let backlog = await endOffsets(admin, inTopics);

  // 2. drain (a profiled engine maps its profile to the TypeScript sources)
  const forkOpts = opts.profileFile ? { nodeArgs: ['--enable-source-maps'] } : {};
  let child = await startChild(target.child, forkOpts);
  let peakRss = 0;
  try {
    // A profile covers the drain; a profiled run's figures carry the profiler's overhead.
    if (opts.profileFile) await child.request('profile-start');
    let m = await measureDrain(env, child, target.label, backlog - base);
    let redone = false;
    if ((!m.drain || m.drain.seconds < opts.drain.minSeconds) && !opts.profileFile) {
      // Too short to time well (or at all): a backlog sized for the target, from the rate seen.
      const rate = m.drain?.rate ?? ((backlog - base) * 1000) / POLL_MS;
      const records = Math.ceil((rate * opts.drain.targetSeconds) / 10_000) * 10_000;
      log(`[bench] ${target.label}: the drain took ${m.drain ? `${m.drain.seconds.toFixed(2)} s` : 'under one poll'}; again with a backlog of ${records.toLocaleString('en-US')} records`);
      peakRss = Math.max(peakRss, (await child.stop()).maxRss);
      current = nextBacklog(current, records);
      loads = await prepareLoads(env, target, current);
      produced = await produceBacklog(env, target, loads, settings.batchSize);
      base = backlog;
      backlog = await endOffsets(admin, inTopics);
      child = await startChild(target.child, forkOpts);
      m = await measureDrain(env, child, target.label, backlog - base);
      redone = true;
    }
    if (opts.profileFile) await child.request('profile-stop', { file: opts.profileFile });
    const { drain, first, last } = timed(m, target.label);
    const state = await child.sample(true);
    // Over the child's whole life up to the drain's end: at a commit everything consumed so far has
    // been produced, while between two moments the counters are skewed by batches in flight.
    const forward = last.engine.consumed > 0 ? last.engine.produced / last.engine.consumed : Number.NaN;
    // The workload's own ceiling, measured right after its drain (the engine idles meanwhile), so
    // that both see the machine in the same state.
    const matched = opts.matchedPipe ? await runMatchedPipe(env, target, forward) : undefined;

    // 3. latency
    const rate = Math.max(50, Math.round(latency.rate ?? drain.rate * latency.load));
    let since = Number.POSITIVE_INFINITY;
    const reader = await startLatencyReader({ brokers: env.brokers, topics: target.outputs, since: () => since });
    await reader.ready;
    await sleep(1000);
    since = Date.now();
    const latBar = progressBar(`latency ${target.label}`, Math.round(rate * latency.seconds));
    const sentBy = loads.map(() => 0);
    const live = async (ms: number): Promise<void> => {
      const before = [...sentBy];
      await Promise.all(
        loads.map((load, i) =>
          target.inputs[i]!.share === 0 ? undefined : produceLoad({
            producer: env.producer,
            topic: target.inputs[i]!.topic,
            load,
            rate: rate * target.inputs[i]!.share,
            batchSize: Math.max(1, Math.ceil((rate * target.inputs[i]!.share) / 50)),
            count: Number.MAX_SAFE_INTEGER,
            durationMs: ms,
            live: true,
            onProgress: (n) => {
              sentBy[i] = before[i]! + n;
              latBar.update(sentBy.reduce((a, b) => a + b, 0));
            },
          }),
        ),
      );
    };
    await live(latency.seconds * 1000);
    // Sparse outputs (a window closes once per window size): go on, a second at a time, until
    // enough outputs were timed or the phase has doubled.
    for (let extra = 0; reader.latencies.length < MIN_TIMED_OUTPUTS && extra < latency.seconds; extra++) await live(1000);
    const sent = sentBy.reduce((a, b) => a + b, 0);
    const phaseSeconds = (Date.now() - since) / 1000;
    latBar.stop();
    // Let the last outputs arrive: stop once nothing new came for 1.5 s (at most 10 s).
    const settleEnd = Date.now() + 10_000;
    while (Date.now() < settleEnd && Date.now() - reader.lastAt < 1500) await sleep(100);
    await reader.stop();
    const ms = summarize(reader.latencies);

    const end = await child.stop();
    peakRss = Math.max(peakRss, end.maxRss, state.maxRss);
    const engineCpu = cpuSecondsBetween(first, last);
    const brokerCpu = first.broker !== undefined && last.broker !== undefined ? last.broker - first.broker : undefined;
    const avgRecordBytes = loads.reduce((a, l) => a + l.bytes, 0) / loads.reduce((a, l) => a + l.values.length, 0);
    const result: KafkaRunResult = {
      label: target.label,
      records: backlog - base,
      avgRecordBytes,
      produce: { records: produced.records, seconds: produced.seconds, recordsPerSec: produced.records / produced.seconds },
      drain: { seconds: drain.seconds, records: drain.records, recordsPerSec: drain.rate, mbPerSec: (drain.rate * avgRecordBytes) / MB, redone },
      forward,
      matchedPipe: matched,
      engine: {
        cpuSeconds: engineCpu,
        cpuSecondsPerMillion: cpuSecondsPerMillion(engineCpu, drain.records),
        recordsPerCoreSecond: recordsPerCoreSecond(drain.records, engineCpu),
        coresUsed: engineCpu / drain.seconds,
        peakRssBytes: peakRss,
        stateBytes: state.stateBytes,
        stateEntries: state.stateEntries,
        stateBytesPerKey: state.stateBytes !== undefined && state.stateBytes > 0 && opts.keys > 0 ? state.stateBytes / opts.keys : undefined,
      },
      broker: {
        cpuSeconds: brokerCpu,
        cpuSecondsPerMillion: brokerCpu === undefined ? undefined : cpuSecondsPerMillion(brokerCpu, drain.records),
      },
      latency: { rate, seconds: phaseSeconds, sent, outputs: reader.latencies.length, ms },
    };
    if (env.verbose) log(`[bench] ${target.label}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    child.kill();
  }
}

/**
 * The raw kafkajs pipe over a workload's own input topics (from the beginning, in a group of its
 * own), producing `forward` records per consumed record, timed like the workload's drain (or over
 * `records` records past its first commit): the ceiling of a workload that consumes and produces
 * that much.
 */
export async function runMatchedPipe(env: KafkaEnv, workload: KafkaTarget, forward: number, records?: number): Promise<MatchedPipeResult> {
  const inTopics = workload.inputs.map((i) => i.topic);
  const outTopic = `${inTopics[0]}.matched-pipe`;
  const group = `${workload.group}-matched-pipe`;
  await env.admin.createTopics([{ topic: outTopic, partitions: 4 }]);
  const total = await endOffsets(env.admin, inTopics);
  const child = await startChild({ mode: 'pipe', brokers: env.brokers, inTopics, outTopic, group, concurrency: 2, forward });
  try {
    const label = `pipe × ${forward.toFixed(3)}`;
    const { drain, first, last } = timed(await measureDrain(env, child, label, total, records), label);
    const cpu = cpuSecondsBetween(first, last);
    await child.stop();
    return { forward, records: drain.records, seconds: drain.seconds, recordsPerSec: drain.rate, cpuSecondsPerMillion: cpuSecondsPerMillion(cpu, drain.records) };
  } finally {
    child.kill();
  }
}
