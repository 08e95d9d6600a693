// A whole benchmark run: environment (broker, registry, perf-tool jars), the in-process core
// benchmark, the ceilings (raw kafkajs pipe, kafka-producer-perf-test, kafka-consumer-perf-test),
// the workloads on Kafka, the scaling curves and the profile (full runs), then the JSON result,
// the Markdown summary and the charts under bench/results/<run id>/.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaClient } from '../../connectors/kafka-client.ts';
import { REPO_ROOT, ensureKafkaJars } from '../../connectors/kafka-jars.ts';
import { startLocalBroker } from '../../connectors/local-broker.ts';
import type { LocalBroker } from '../../connectors/local-broker.ts';
import { startRegistry } from '../../schemas/registry/server.ts';
import { AvroSerde, loadSchemaCatalog } from '../../schemas/serde.ts';
import type { Plan } from '../../topology/types.ts';
import { barChartSpec, lineChartSpec, renderSvg } from './charts.ts';
import type { Point } from './charts.ts';
import { runChild } from './child-process.ts';
import { benchSerde, coreLoad, measurePlan, measureSerde } from './core.ts';
import { measureDetectors, measurePredictScaling } from './analysis.ts';
import { generateLoad } from './load.ts';
import { runKafkaTarget } from './kafka-bench.ts';
import type { DrainSettings, KafkaEnv, KafkaTarget, LatencySettings, LoadSettings } from './kafka-bench.ts';
import { machineInfo } from './machine.ts';
import { runConsumerPerf, runProducerPerf } from './perf-tools.ts';
import { summarizeProfileFile } from './profile.ts';
import { brokerBound, ratiosFor, summaryMarkdown } from './report.ts';
import type { BenchResult, CoreResults, CoreStage, WorkloadResult } from './report.ts';
import { spanFor } from './scaling.ts';
import type { KeyPointResult, KeyPointSpec } from './scaling.ts';
import { linearFit, serialPipeRate } from './stats.ts';
import { WORKLOADS, WORKLOAD_FILES, chainYaml, fedSources, kafkaChainYaml, loadBenchPlan, planText } from './topologies.ts';
import type { ChainOperator, WorkloadName } from './topologies.ts';

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
export const REFERENCE_DIR = fileURLToPath(new URL('../reference/', import.meta.url));

export interface BenchOptions {
  quick: boolean;
  workloads: WorkloadName[];
  /** Backlog records per workload (and per ceiling). */
  records: number;
  keys: number;
  recordBytes: number;
  outOfOrder: number;
  maxLatenessMs: number;
  anomalies: number;
  latencySeconds: number;
  /** Fixed latency-phase rate; undefined = latencyLoad x each workload's drain rate. */
  latencyRate?: number;
  latencyLoad: number;
  /** Drains shorter than minDrainSeconds are redone with a backlog sized for targetDrainSeconds. */
  minDrainSeconds: number;
  targetDrainSeconds: number;
  /** In-process records per pass. */
  coreRecords: number;
  /** Scaling curves (keys, operators). */
  scaling: boolean;
  profile: boolean;
  charts: boolean;
  outDir: string;
  /** Also copy the summary, result and charts to bench/reference/ (the README's figures). */
  reference: boolean;
  brokerPid?: number;
  seed: number;
  verbose: boolean;
}

export function defaultOptions(quick: boolean): BenchOptions {
  return {
    quick,
    workloads: [...WORKLOADS],
    records: quick ? 150_000 : 400_000,
    keys: 1000,
    recordBytes: 0,
    outOfOrder: 0.05,
    maxLatenessMs: 500,
    anomalies: 0.01,
    latencySeconds: quick ? 5 : 20,
    latencyLoad: 0.5,
    minDrainSeconds: quick ? 2.5 : 5,
    targetDrainSeconds: quick ? 3.5 : 8,
    coreRecords: quick ? 60_000 : 200_000,
    scaling: !quick,
    profile: !quick,
    charts: true,
    outDir: RESULTS_DIR,
    reference: false,
    seed: 42,
    verbose: false,
  };
}

/** Client settings the Runner and the pipe share (connectors/kafka-client.ts defaults). */
const CLIENT_SETTINGS = {
  'consumer.maxBytesPerPartition': 1_048_576,
  'consumer.maxWaitTimeInMs': 250,
  'consumer.partitionsConsumedConcurrently': 2,
  'producer.idempotent': 'true',
  'producer.acks': -1,
  'producer.compression': 'none',
  'producer.maxInFlightRequests': 5,
  'commit': 'after each consumed batch is produced',
};

/** The Java tools get the same batching: 1 MiB per partition, acks=all, idempotent, no compression. */
const PRODUCER_PERF_PROPS = {
  acks: 'all',
  'enable.idempotence': 'true',
  'batch.size': 1_048_576,
  'linger.ms': 5,
  'compression.type': 'none',
  'max.in.flight.requests.per.connection': 5,
};
const CONSUMER_PERF_PROPS = {
  'max.partition.fetch.bytes': 1_048_576,
  'fetch.max.wait.ms': 250,
  'auto.offset.reset': 'earliest',
};

/** Window size of a plan's first aggregate (for spreading event times), default 10 s. */
function windowMsOf(plan: Plan): number {
  for (const sub of plan.subtopologies)
    for (const n of sub.nodes) {
      const size = (n.config.window as { size?: unknown } | undefined)?.size;
      if (n.type === 'aggregate' && typeof size === 'number') return size;
    }
  return 10_000;
}

function runIdNow(mode: string): string {
  return `${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}-${mode}`;
}

function engineTarget(label: string, plan: Plan, file: string, prefix: string, env: KafkaEnv, keys: number): KafkaTarget {
  const fed = fedSources(plan.topology);
  const streams = fed.filter((s) => !s.table);
  // Two inputs (the monitor, correlate): two thirds metrics, one third logs. A table gets one row
  // per key in each backlog, and nothing in the live phase.
  const shareOf = (schemaName: string) => (streams.length === 1 ? 1 : schemaName.endsWith('MetricSample') ? 2 / 3 : 1 / 3 / (streams.length - 1));
  return {
    label,
    inputs: fed.map((s) => ({ topic: s.topic, partitions: s.partitions, schemaName: s.schemaName, ...(s.table ? { share: 0, fixed: keys } : { share: shareOf(s.schemaName) }) })),
    outputs: [...new Set(plan.topology.sinks.map((s) => s.topic))],
    group: plan.topology.name,
    child: { mode: 'engine', file, prefix, brokers: env.brokers, registryUrl: env.registryUrl, verbose: env.verbose },
  };
}

function pipeTarget(prefix: string, env: KafkaEnv): KafkaTarget {
  const inTopic = `${prefix}.pipe.in`;
  const outTopic = `${prefix}.pipe.out`;
  const group = `${prefix}-pipe`;
  return {
    label: 'kafkajs pipe',
    inputs: [{ topic: inTopic, partitions: 4, schemaName: 'vigil.telemetry.MetricSample', share: 1 }],
    outputs: [outTopic],
    createOutputs: [{ topic: outTopic, partitions: 4 }],
    group,
    child: { mode: 'pipe', brokers: env.brokers, inTopics: [inTopic], outTopic, group, concurrency: 2, forward: 1 },
  };
}

/** Average key + Avro value size of the metric load (from a sample): the perf tools' record size. */
async function averageValueBytes(env: KafkaEnv, o: BenchOptions): Promise<number> {
  const schema = env.catalog.get('vigil.telemetry.MetricSample')!;
  const serde = benchSerde();
  const id = await serde.register('sample-value', schema);
  const sample = generateLoad(
    { kind: 'metric', records: 5000, keys: o.keys, recordBytes: o.recordBytes, outOfOrderFraction: 0, maxOutOfOrderMs: 0, anomalyFraction: o.anomalies, seed: o.seed, startTime: Date.now(), spanMs: 0 },
    (v) => serde.encode(id, v),
  );
  return sample.bytes / sample.values.length;
}

// ---------------------------------------------------------------------------------------------
// In-process core

async function runCore(o: BenchOptions, log: (l: string) => void): Promise<CoreResults> {
  const catalog = loadSchemaCatalog();
  const serde = benchSerde();
  const batch = 1000;
  const repeat = o.quick ? 3 : 5;
  const windowPlan = loadBenchPlan(WORKLOAD_FILES.window);
  const windowMs = windowMsOf(windowPlan);
  const spec = {
    records: o.coreRecords,
    keys: o.keys,
    recordBytes: o.recordBytes,
    outOfOrderFraction: o.outOfOrder,
    maxOutOfOrderMs: o.maxLatenessMs,
    anomalyFraction: o.anomalies,
    seed: o.seed,
    startTime: 1_700_000_000_000,
    spanMs: spanFor(o.coreRecords, o.keys, windowMs),
  };
  const metrics = await coreLoad(serde, catalog.get('vigil.telemetry.MetricSample')!, 'core.metrics-value', { ...spec, kind: 'metric' });
  const logs = await coreLoad(serde, catalog.get('vigil.telemetry.LogLine')!, 'core.logs-value', { ...spec, kind: 'log', records: Math.round(o.coreRecords / 2), seed: o.seed + 1 });
  const entities = await coreLoad(serde, catalog.get('vigil.inventory.Entity')!, 'core.entities-value', { ...spec, kind: 'entity', records: o.keys, seed: o.seed + 2 });
  const loadOf = (schemaName: string) => (schemaName.endsWith('LogLine') ? logs : schemaName.endsWith('Entity') ? entities : metrics);
  const metricsInput = (topic: string) => [{ topic, load: metrics }];

  log('[bench] core: Avro decode and encode');
  const { decodeNs, encodeNs } = await measureSerde(serde, metrics, catalog.get('vigil.telemetry.MetricSample')!, repeat);
  const ks = o.quick ? [0, 4, 16] : [0, 1, 2, 4, 8, 16];
  const chains: CoreResults['chains'] = { filter: [], map: [] };
  for (const op of ['filter', 'map'] as ChainOperator[]) {
    log(`[bench] core: chains of ${ks.join(', ')} ${op} operators`);
    for (const k of ks) {
      const plan = planText(chainYaml(op, k));
      const m = await measurePlan(plan, serde, metricsInput(plan.topology.sources[0]!.topic), { repeat, batch });
      chains[op].push({ operators: k, nsPerRecord: m.nsPerRecord });
    }
  }
  const fit = (op: ChainOperator) => linearFit(chains[op].map((p) => p.operators), chains[op].map((p) => p.nsPerRecord));
  const ff = fit('filter');
  const mf = fit('map');
  const zero = chains.filter.find((p) => p.operators === 0)!.nsPerRecord;
  const workloads: CoreResults['workloads'] = [];
  for (const name of WORKLOADS) {
    log(`[bench] core: workload ${name}`);
    const plan = loadBenchPlan(WORKLOAD_FILES[name]);
    const inputs = fedSources(plan.topology).map((s) => ({ topic: s.topic, load: loadOf(s.schemaName) }));
    const m = await measurePlan(plan, serde, inputs, { repeat, batch });
    workloads.push({ name, nsPerRecord: m.nsPerRecord, recordsPerSec: m.recordsPerSec, outputsPerRecord: m.outputsPerRecord, changelogPerRecord: m.changelogPerRecord });
  }
  const detectors = await measureDetectors(serde, metrics, { repeat, batch, stateSeries: o.quick ? 2000 : 10_000, perSeries: 250, seed: o.seed + 3 }, log);
  const predict = await measurePredictScaling(serde, o.quick ? [10, 1000] : [10, 100, 1000, 10_000], { repeat, batch, seed: o.seed + 4 }, log);
  const win = workloads.find((w) => w.name === 'window')!;
  // The window chain encodes only its outputs where the zero-operator chain encodes every record.
  const aggregate = win.nsPerRecord - zero + encodeNs * (1 - win.outputsPerRecord);
  const stages: CoreStage[] = [
    { stage: 'Avro decode (MetricSample)', nsPerRecord: decodeNs, note: 'AvroSerde.decode with the reader schema' },
    { stage: 'Avro encode (MetricSample)', nsPerRecord: encodeNs, note: 'AvroSerde.encode into the wire format' },
    { stage: 'task dispatch', nsPerRecord: zero - decodeNs - encodeNs, note: 'source → sink with no operator, minus decode and encode: key, event time, watermark, sink key' },
    { stage: 'filter (per operator)', nsPerRecord: ff.slope, note: 'slope over chains of filters' },
    { stage: 'map (per operator)', nsPerRecord: mf.slope, note: 'slope over chains of maps (keep_input + 1 expression)' },
    { stage: 'aggregate (window workload)', nsPerRecord: aggregate, note: 'window chain − zero-operator chain + encodes it saves; includes encoding its Avro changelog' },
    ...workloads.map((w) => ({
      stage: `whole chain: ${w.name}`,
      nsPerRecord: w.nsPerRecord,
      note: `decode → operators → encode; ${(w.outputsPerRecord * 100).toFixed(1)}% out, ${w.changelogPerRecord.toFixed(2)} changelog records/record`,
    })),
  ];
  return {
    records: o.coreRecords,
    keys: o.keys,
    batch,
    decodeNs,
    encodeNs,
    chains,
    perOperatorNs: { filter: ff.slope, map: mf.slope, aggregate, filterR2: ff.r2, mapR2: mf.r2 },
    workloads,
    stages,
    detectors: detectors.map((d) => ({ ...d, operatorNs: d.nsPerRecord - zero })),
    predict: predict.map((p) => ({ ...p, operatorNs: p.nsPerRecord - zero })),
  };
}

// ---------------------------------------------------------------------------------------------
// Charts

export async function writeCharts(r: BenchResult, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, svg: string) => {
    await writeFile(join(dir, name), svg);
    written.push(name);
  };
  const bars = [
    { label: 'kafkajs pipe', value: r.ceilings.pipe.drain.recordsPerSec, group: 'ceiling' },
    ...(r.ceilings.producerPerf ? [{ label: 'java producer', value: r.ceilings.producerPerf.recordsPerSec, group: 'ceiling' }] : []),
    ...(r.ceilings.consumerPerf ? [{ label: 'java consumer', value: r.ceilings.consumerPerf.fetchRecordsPerSec, group: 'ceiling' }] : []),
    ...r.workloads.map((w) => ({ label: w.name, value: w.drain.recordsPerSec, group: 'Vigil workload' })),
  ];
  await put('throughput.svg', await renderSvg(barChartSpec({ title: 'Throughput on Kafka (records/s)', yTitle: 'records/s', bars })));
  const ops: Point[] = [];
  for (const op of ['filter', 'map'] as const) for (const p of r.core.chains[op]) ops.push({ x: p.operators, y: p.nsPerRecord, series: `in-process chain of ${op}` });
  await put('operators-core.svg', await renderSvg(lineChartSpec({ title: 'Engine cost vs number of operators (in-process)', xTitle: 'operators in the chain', yTitle: 'ns / record', points: ops })));
  const s = r.scaling;
  if (!s) return written;
  if (s.kafkaOperators.length) {
    const pts: Point[] = s.kafkaOperators.map((o) => ({ x: o.operators, y: o.result.drain.recordsPerSec, series: 'Vigil (map chain) on Kafka' }));
    for (const o of s.kafkaOperators) pts.push({ x: o.operators, y: r.ceilings.pipe.drain.recordsPerSec, series: 'raw kafkajs pipe (ceiling)' });
    await put('operators-kafka.svg', await renderSvg(lineChartSpec({ title: 'Throughput vs number of operators (Kafka)', xTitle: 'operators in the chain', yTitle: 'records/s', points: pts })));
  }
  if (s.keys.length) {
    const tput: Point[] = s.keys.map((k) => ({ x: k.keys, y: k.recordsPerSec, series: 'window, in-process' }));
    for (const k of s.kafkaKeys) if (k.result) tput.push({ x: k.keys, y: k.result.drain.recordsPerSec, series: 'window, on Kafka' });
    await put('keys-throughput.svg', await renderSvg(lineChartSpec({ title: 'Throughput vs number of series (window workload)', xTitle: 'series (keys)', yTitle: 'records/s', points: tput, logX: true })));
    const mem: Point[] = [];
    for (const k of s.keys) {
      mem.push({ x: k.keys, y: k.heapBytesPerKey, series: 'heap growth per series (in-process)' });
      mem.push({ x: k.keys, y: k.stateBytesPerKey, series: 'state per series, JSON bytes (approxBytes)' });
    }
    await put('keys-state.svg', await renderSvg(lineChartSpec({ title: 'Memory per series (window workload)', xTitle: 'series (keys)', yTitle: 'bytes per series', points: mem.filter((p) => p.y > 0), logX: true, logY: true })));
    const rss: Point[] = s.keys.map((k) => ({ x: k.keys, y: k.peakRss / 1048576, series: 'in-process peak RSS' }));
    for (const k of s.kafkaKeys) if (k.result) rss.push({ x: k.keys, y: k.result.engine.peakRssBytes / 1048576, series: 'engine on Kafka, peak RSS' });
    await put('keys-memory.svg', await renderSvg(lineChartSpec({ title: 'Peak memory vs number of series (window workload)', xTitle: 'series (keys)', yTitle: 'MiB', points: rss, logX: true, logY: true })));
  }
  return written;
}

// ---------------------------------------------------------------------------------------------

export async function runBench(o: BenchOptions): Promise<{ result: BenchResult; dir: string }> {
  const t0 = Date.now();
  const startedAt = new Date().toISOString();
  const mode = o.quick ? 'quick' : 'full';
  const runId = runIdNow(mode);
  const dir = resolve(o.outDir, runId);
  await mkdir(dir, { recursive: true });
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const phase = (name: string) => log(`[bench] ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s  ${name}`);
  const machine = machineInfo();

  // In-process first, before the broker starts: nothing else of the run competes for the CPU.
  phase('in-process core benchmark');
  const core = await runCore(o, log);

  phase('environment');
  const jars = await ensureKafkaJars({ log });
  const external = process.env.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter((b) => b !== '');
  let broker: LocalBroker | undefined;
  let brokers: string[];
  let brokerPid = o.brokerPid;
  if (external?.length) {
    brokers = external;
    log(`[bench] Kafka at ${brokers.join(',')} (KAFKA_BROKERS)${brokerPid ? `, broker pid ${brokerPid}` : '; broker CPU not measured (no --broker-pid)'}`);
  } else {
    log('[bench] starting a local Kafka broker for this run (temporary directory)');
    broker = await startLocalBroker({ log, heapMb: 1024 });
    brokers = [broker.brokers];
    brokerPid = broker.pid;
    log(`[bench] local broker ${broker.brokers}, pid ${broker.pid}`);
  }
  const registry = await startRegistry({ brokers, port: 0 });
  const catalog = loadSchemaCatalog();
  const serde = new AvroSerde({ url: registry.url, catalog });
  const client = new KafkaClient({ brokers, clientId: 'vigil-bench' });
  const admin = client.admin();
  const producer = client.producer();
  await producer.connect();
  const env: KafkaEnv = { brokers, brokerPid, registryUrl: registry.url, serde, catalog, admin, producer, log, verbose: o.verbose };
  const prefix = `vb-${randomBytes(3).toString('hex')}`;
  const windowMs = windowMsOf(loadBenchPlan(WORKLOAD_FILES.window));
  const settings = (records: number, keys: number): LoadSettings => ({
    records,
    keys,
    recordBytes: o.recordBytes,
    outOfOrderFraction: o.outOfOrder,
    maxOutOfOrderMs: o.maxLatenessMs,
    anomalyFraction: o.anomalies,
    seed: o.seed,
    spanMs: spanFor(records, keys, windowMs),
    // Aligned to the windows, six hours back: the live phase's event times are later than any.
    startTime: Math.floor((Date.now() - 6 * 3600_000) / windowMs) * windowMs,
    windowMs,
    batchSize: 2000,
  });
  const load = settings(o.records, o.keys);
  const latency: LatencySettings = { seconds: o.latencySeconds, rate: o.latencyRate, load: o.latencyLoad };
  const drain: DrainSettings = { minSeconds: o.minDrainSeconds, targetSeconds: o.targetDrainSeconds };

  try {
    phase('ceiling: kafka-producer-perf-test');
    const perfTopic = `${prefix}.perf.producer`;
    await admin.createTopics([{ topic: perfTopic, partitions: 4 }]);
    const recordSize = Math.max(1, Math.round(await averageValueBytes(env, o)));
    // Three backlogs' worth: a few seconds, so that the JVM's warm-up weighs little; the consumer
    // perf-test then reads this topic.
    const perfRecords = 3 * o.records;
    const producerPerf = await runProducerPerf({ brokers, classpath: jars.classpath, topic: perfTopic, records: perfRecords, recordSize, props: PRODUCER_PERF_PROPS }).catch((err: unknown) => {
      log(`[bench] producer perf-test failed: ${(err as Error).message}`);
      return undefined;
    });
    phase('ceiling: raw kafkajs pipe');
    const pipe = await runKafkaTarget(env, pipeTarget(prefix, env), load, latency, { keys: o.keys, drain });
    phase('ceiling: kafka-consumer-perf-test');
    const consumerPerf = await runConsumerPerf({
      brokers,
      classpath: jars.classpath,
      topic: perfTopic,
      records: perfRecords,
      group: `${prefix}-perf-consumer`,
      fetchSize: 1_048_576,
      props: CONSUMER_PERF_PROPS,
      configFile: join(dir, 'consumer-perf.properties'),
    }).catch((err: unknown) => {
      log(`[bench] consumer perf-test failed: ${(err as Error).message}`);
      return undefined;
    });
    const ceilings: BenchResult['ceilings'] = {
      pipe,
      producerPerf,
      consumerPerf,
      brokerRecordsPerSec: producerPerf && consumerPerf ? serialPipeRate(consumerPerf.fetchRecordsPerSec, producerPerf.recordsPerSec, 1) : undefined,
    };

    const workloads: WorkloadResult[] = [];
    const failures: BenchResult['failures'] = [];
    for (const name of o.workloads) {
      phase(`workload: ${name}`);
      const p = `${prefix}-${name}`;
      const plan = loadBenchPlan(WORKLOAD_FILES[name], p);
      const target = engineTarget(name, plan, WORKLOAD_FILES[name], p, env, o.keys);
      try {
        const r = await runKafkaTarget(env, target, load, latency, { keys: o.keys, drain, matchedPipe: true });
        const matchedPipe = r.matchedPipe!;
        const bound = brokerBound(ceilings, r.forward);
        workloads.push({ ...r, name, topology: relative(REPO_ROOT, WORKLOAD_FILES[name]), matchedPipe, brokerBound: bound, ratios: ratiosFor(r.drain.recordsPerSec, ceilings, matchedPipe, bound) });
      } catch (err) {
        // An engine that cannot finish a workload is the finding; the other figures still count.
        log(`[bench] workload ${name} failed: ${(err as Error).message}`);
        failures.push({ name, error: (err as Error).message });
      }
    }

    let scaling: BenchResult['scaling'];
    if (o.scaling) {
      scaling = { keys: [], kafkaKeys: [], kafkaOperators: [] };
      for (const keys of [10, 100, 1000, 10_000, 100_000, 1_000_000]) {
        phase(`scaling in-process: ${keys} series`);
        const spec: KeyPointSpec = { keys, records: Math.max(o.coreRecords, 2 * keys), seed: o.seed, batch: 1000, windowMs };
        scaling.keys.push(await runChild<KeyPointResult>({ mode: 'core-keys', spec }, { nodeArgs: ['--expose-gc', '--max-old-space-size=8192'] }));
      }
      for (const keys of [10, 1000, 10_000, 100_000]) {
        phase(`scaling on Kafka: window, ${keys} series`);
        const p = `${prefix}-wk${keys}`;
        const plan = loadBenchPlan(WORKLOAD_FILES.window, p);
        try {
          const r = await runKafkaTarget(env, engineTarget(`window ${keys} series`, plan, WORKLOAD_FILES.window, p, env, keys), settings(Math.max(o.records, 2 * keys), keys), { ...latency, seconds: 5 }, { keys, drain });
          scaling.kafkaKeys.push({ keys, result: r });
        } catch (err) {
          // A point the engine cannot finish is a finding, not the end of the run.
          log(`[bench] window with ${keys} series failed: ${(err as Error).message}`);
          scaling.kafkaKeys.push({ keys, error: (err as Error).message });
        }
      }
      const topoDir = join(dir, 'topologies');
      await mkdir(topoDir, { recursive: true });
      for (const k of [1, 4, 16]) {
        phase(`scaling on Kafka: a filter and ${k - 1} map operators`);
        const file = join(topoDir, `chain-${k}.yaml`);
        await writeFile(file, kafkaChainYaml(k));
        const p = `${prefix}-ops${k}`;
        const plan = loadBenchPlan(file, p);
        try {
          const r = await runKafkaTarget(env, engineTarget(`chain of ${k}`, plan, file, p, env, o.keys), load, { ...latency, seconds: 5 }, { keys: o.keys, drain, matchedPipe: true });
          scaling.kafkaOperators.push({ operators: k, result: r });
        } catch (err) {
          log(`[bench] chain of ${k} operators failed: ${(err as Error).message}`);
          failures.push({ name: `chain of ${k} operators`, error: (err as Error).message });
        }
      }
    }

    const profiles: NonNullable<BenchResult['profiles']> = [];
    if (o.profile) {
      for (const name of o.workloads) {
        phase(`CPU profile of the engine: ${name} workload`);
        const p = `${prefix}-prof-${name}`;
        const plan = loadBenchPlan(WORKLOAD_FILES[name], p);
        const file = join(dir, `engine-${name}.cpuprofile`);
        // As large a backlog as the measured run drained, so the profile covers seconds of work.
        const measured = workloads.find((w) => w.name === name)?.records ?? o.records;
        try {
          await runKafkaTarget(env, engineTarget(`${name} (profiled)`, plan, WORKLOAD_FILES[name], p, env, o.keys), settings(Math.max(o.records, measured), o.keys), { ...latency, seconds: 2 }, { keys: o.keys, drain, profileFile: file });
          profiles.push({ workload: name, file: relative(REPO_ROOT, file), summary: await summarizeProfileFile(file, 40) });
        } catch (err) {
          log(`[bench] profile of ${name} failed: ${(err as Error).message}`);
        }
      }
    }

    const result: BenchResult = {
      format: 'vigil-bench/1',
      runId,
      mode,
      startedAt,
      finishedAt: new Date().toISOString(),
      seconds: (Date.now() - t0) / 1000,
      machine,
      broker: { brokers, local: broker !== undefined, pid: brokerPid },
      settings: { load, latency, drain, client: CLIENT_SETTINGS, producerPerfProps: PRODUCER_PERF_PROPS, consumerPerfProps: CONSUMER_PERF_PROPS },
      ceilings,
      workloads,
      core,
      scaling,
      profiles,
      failures,
    };
    if (o.charts) {
      phase('charts');
      result.charts = await writeCharts(result, join(dir, 'charts'));
    }
    result.finishedAt = new Date().toISOString();
    result.seconds = (Date.now() - t0) / 1000;
    await writeFile(join(dir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    await writeFile(join(dir, 'summary.md'), summaryMarkdown(result));
    if (o.reference) await publishReference(result, dir);
    phase(`done: ${relative(process.cwd(), dir) || dir}`);
    return { result, dir };
  } finally {
    await producer.disconnect().catch(() => undefined);
    if (!broker) {
      // An external cluster keeps nothing of the run.
      const mine = (await admin.listTopics().catch(() => [] as string[])).filter((t) => t.startsWith(`${prefix}.`) || t.startsWith(`${prefix}-`));
      if (mine.length) await admin.deleteTopics(mine).catch(() => undefined);
    }
    await admin.disconnect().catch(() => undefined);
    await registry.close().catch(() => undefined);
    await broker?.stop();
  }
}

/** Copies a run's summary, result and charts to bench/reference/ (tracked: the README shows them). */
async function publishReference(r: BenchResult, dir: string): Promise<void> {
  await mkdir(join(REFERENCE_DIR, 'charts'), { recursive: true });
  await copyFile(join(dir, 'result.json'), join(REFERENCE_DIR, `${r.mode}.json`));
  await copyFile(join(dir, 'summary.md'), join(REFERENCE_DIR, `${r.mode}.md`));
  for (const c of r.charts ?? []) await copyFile(join(dir, 'charts', c), join(REFERENCE_DIR, 'charts', c));
}
