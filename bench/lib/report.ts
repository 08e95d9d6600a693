// The result of a run (written as JSON) and its Markdown summary (printed and written).
import type { OperatorCost } from './analysis.ts';
import type { DrainSettings, KafkaRunResult, LatencySettings, LoadSettings, MatchedPipeResult } from './kafka-bench.ts';
import type { MachineInfo } from './machine.ts';
import type { ConsumerPerfResult, ProducerPerfResult } from './perf-tools.ts';
import type { ProfileSummary } from './profile.ts';
import { profileMarkdown } from './profile.ts';
import type { KeyPointResult } from './scaling.ts';
import { MB, ratio, serialPipeRate } from './stats.ts';
import type { WorkloadName } from './topologies.ts';

export interface Ratios {
  /** To the raw kafkajs pipe over the same inputs producing the same records per consumed record. */
  pipe: number | null;
  /** To the broker's perf-test bound for the same records produced per consumed record (serialPipeRate). */
  broker: number | null;
  /** To the raw kafkajs pipe that forwards every record. */
  fullPipe: number | null;
  producerPerf: number | null;
  consumerPerf: number | null;
}

export interface WorkloadResult extends KafkaRunResult {
  name: WorkloadName;
  topology: string;
  matchedPipe: MatchedPipeResult;
  /** The perf tools' bound for this workload's produced/consumed ratio, records/s. */
  brokerBound?: number;
  ratios: Ratios;
}

export interface CoreStage {
  stage: string;
  nsPerRecord: number;
  note?: string;
}

export interface CoreResults {
  records: number;
  keys: number;
  batch: number;
  decodeNs: number;
  encodeNs: number;
  /** Chains of k operators: ns/record of the whole chain (decode + task + encode). */
  chains: Record<'filter' | 'map', Array<{ operators: number; nsPerRecord: number }>>;
  perOperatorNs: { filter: number; map: number; aggregate: number; filterR2: number; mapR2: number };
  workloads: Array<{ name: WorkloadName; nsPerRecord: number; recordsPerSec: number; outputsPerRecord: number; changelogPerRecord: number }>;
  stages: CoreStage[];
  /** The detect operator's detectors: whole chain and the detector's share (chain − zero-operator chain), state per series. */
  detectors?: Array<OperatorCost & { operatorNs: number }>;
  /** predict, linear, over count windows of growing size: ns/record should not grow. */
  predict?: Array<OperatorCost & { operatorNs: number; points: number }>;
}

export interface BenchResult {
  format: 'vigil-bench/1';
  runId: string;
  mode: 'quick' | 'full';
  startedAt: string;
  finishedAt: string;
  seconds: number;
  machine: MachineInfo;
  broker: { brokers: string[]; local: boolean; pid?: number };
  settings: {
    load: LoadSettings;
    latency: LatencySettings;
    drain: DrainSettings;
    /** Client settings shared by the engine and the raw pipe (connectors/kafka-client.ts defaults). */
    client: Record<string, string | number>;
    producerPerfProps: Record<string, string | number>;
    consumerPerfProps: Record<string, string | number>;
  };
  ceilings: {
    pipe: KafkaRunResult;
    producerPerf?: ProducerPerfResult;
    consumerPerf?: ConsumerPerfResult;
    /** The perf tools' bound for a pipe forwarding every record: serialPipeRate(C, P, 1), records/s. */
    brokerRecordsPerSec?: number;
  };
  workloads: WorkloadResult[];
  core: CoreResults;
  scaling?: {
    keys: KeyPointResult[];
    /** A point whose engine could not finish carries the error instead of a result. */
    kafkaKeys: Array<{ keys: number; result?: KafkaRunResult; error?: string }>;
    kafkaOperators: Array<{ operators: number; result: KafkaRunResult }>;
  };
  /** CPU profiles of the engine's drain, one per workload (full runs, --profile). */
  profiles?: Array<{ workload: WorkloadName; file: string; summary: ProfileSummary }>;
  /** Workloads and scaling points the engine could not finish, with the reason. */
  failures: Array<{ name: string; error: string }>;
  charts?: string[];
}

/** The broker's bound for a workload producing `forward` records per consumed one (undefined without both tools). */
export function brokerBound(c: BenchResult['ceilings'], forward: number): number | undefined {
  if (!c.producerPerf || !c.consumerPerf) return undefined;
  const r = serialPipeRate(c.consumerPerf.fetchRecordsPerSec, c.producerPerf.recordsPerSec, forward);
  return Number.isFinite(r) ? r : undefined;
}

export function ratiosFor(rate: number, c: BenchResult['ceilings'], matched: MatchedPipeResult, bound: number | undefined): Ratios {
  return {
    pipe: ratio(rate, matched.recordsPerSec),
    broker: ratio(rate, bound),
    fullPipe: ratio(rate, c.pipe.drain.recordsPerSec),
    producerPerf: ratio(rate, c.producerPerf?.recordsPerSec),
    consumerPerf: ratio(rate, c.consumerPerf?.fetchRecordsPerSec),
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmtInt(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : Math.round(x).toLocaleString('en-US');
}

export function fmt(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

export function fmtRatio(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(2)}×`;
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

const WORKLOAD_NAMES = new Set<string>(['passthrough', 'window', 'monitor']);

const THROUGHPUT_HEADER = [
  row(['workload', 'produced / consumed', 'records/s', 'MB/s', 'kafkajs pipe, same produced/consumed', '× kafkajs pipe', 'broker perf-test bound', '× broker']),
  row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
];

const RESOURCE_HEADER = [
  row(['workload', 'latency phase rec/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'outputs timed', 'engine CPU s / M rec', 'records/s per engine core', 'engine cores busy', 'broker CPU s / M rec', 'peak RSS MiB', 'state B / key']),
  row(['---', ...Array(12).fill('---:')]),
];

function resourceRow(label: string, r: KafkaRunResult): string {
  const l = r.latency.ms;
  return row([
    label,
    fmtInt(r.latency.rate),
    fmt(l.p50, 0),
    fmt(l.p99, 0),
    fmt(l.p999, 0),
    fmt(l.max, 0),
    fmtInt(r.latency.outputs),
    fmt(r.engine.cpuSecondsPerMillion, 1),
    fmtInt(r.engine.recordsPerCoreSecond),
    fmt(r.engine.coresUsed, 2),
    fmt(r.broker.cpuSecondsPerMillion, 1),
    fmt(r.engine.peakRssBytes / MB, 0),
    r.engine.stateBytesPerKey === undefined ? '–' : fmtInt(r.engine.stateBytesPerKey),
  ]);
}

export function machineLine(m: MachineInfo): string {
  const git = m.git ? `git ${m.git.revision.slice(0, 10)}${m.git.dirty ? ' (uncommitted changes)' : ''}` : 'git unknown';
  return `${m.cpus} × ${m.cpuModel}, ${(m.memoryBytes / 1024 ** 3).toFixed(0)} GiB, ${m.platform} ${m.kernel}; Node ${m.node}, Java ${m.java ?? '?'}, Kafka ${m.kafka}; ${git}`;
}

export function summaryMarkdown(r: BenchResult): string {
  const load = r.settings.load;
  const c = r.ceilings;
  const out: string[] = [];
  out.push(`# Vigil benchmark: ${r.mode} run ${r.runId}`);
  out.push('');
  out.push(`${r.startedAt}, ${r.seconds.toFixed(0)} s. Machine: ${machineLine(r.machine)}.`);
  out.push(
    `Broker: ${r.broker.local ? 'local KRaft broker started for the run' : `external (${r.broker.brokers.join(',')})`}. ` +
      `Load per workload: ${fmtInt(load.records)} records, ${fmtInt(load.keys)} series, ` +
      `${fmt(r.workloads[0]?.avgRecordBytes ?? c.pipe.avgRecordBytes, 0)} B/record (key + Avro value), ${(load.outOfOrderFraction * 100).toFixed(0)}% out of order (≤ ${load.maxOutOfOrderMs} ms), ` +
      `${(load.anomalyFraction * 100).toFixed(1)}% anomalies. Latency phase: ${r.settings.latency.seconds} s at ` +
      `${r.settings.latency.rate ? `${fmtInt(r.settings.latency.rate)} records/s` : `${Math.round(r.settings.latency.load * 100)}% of each workload's measured throughput`}.`,
  );
  out.push('');
  out.push('## Throughput on Kafka, as ratios to ceilings measured in this run');
  out.push('');
  out.push(...THROUGHPUT_HEADER);
  out.push(row(['raw kafkajs pipe (ceiling)', fmt(c.pipe.forward, 3), fmtInt(c.pipe.drain.recordsPerSec), fmt(c.pipe.drain.mbPerSec, 2), fmtInt(c.pipe.drain.recordsPerSec), '1.00×', fmtInt(c.brokerRecordsPerSec), fmtRatio(ratio(c.pipe.drain.recordsPerSec, c.brokerRecordsPerSec))]));
  for (const f of r.failures.filter((x) => WORKLOAD_NAMES.has(x.name))) out.push(row([f.name, '–', `failed: ${f.error}`, '–', '–', '–', '–', '–']));
  for (const w of r.workloads)
    out.push(row([w.name, fmt(w.forward, 3), fmtInt(w.drain.recordsPerSec), fmt(w.drain.mbPerSec, 2), fmtInt(w.matchedPipe.recordsPerSec), fmtRatio(w.ratios.pipe), fmtInt(w.brokerBound), fmtRatio(w.ratios.broker)]));
  out.push('');
  const pp = c.producerPerf;
  const cp = c.consumerPerf;
  out.push(
    `Broker perf tools: kafka-producer-perf-test ${pp ? `${fmtInt(pp.recordsPerSec)} records/s (${fmt(pp.mbPerSec, 2)} MB/s, ${pp.records} × ${fmtInt(c.pipe.avgRecordBytes)} B)` : 'failed'}; ` +
      `kafka-consumer-perf-test ${cp ? `${fmtInt(cp.fetchRecordsPerSec)} records/s (${fmt(cp.fetchMbPerSec, 2)} MB/s, fetch time only)` : 'failed'}. ` +
      'Bound for a workload producing f records per consumed record: 1 / (1/consumer + f/producer).',
  );
  out.push('');
  out.push(...RESOURCE_HEADER);
  out.push(resourceRow('raw kafkajs pipe (ceiling)', c.pipe));
  for (const w of r.workloads) out.push(resourceRow(w.name, w));
  out.push('');
  out.push(
    'records/s: backlog drain rate from the first processed batch to the last (start-up, group join and restore excluded). produced / consumed: records the engine wrote ' +
      '(outputs, changelogs, dead letters) per record it read; the matched kafkajs pipe reads the same topics and writes as many. Latency: from an output ' +
      "record's timestamp (its input's send time) until a read_committed reader has it; for window, from the window's last millisecond, which includes the 1 s allowed " +
      'out-of-orderness. CPU per million records and cores busy are over the drain. MB = MiB, as in the perf tools.',
  );
  out.push('');
  out.push('## Engine core in-process (no Kafka: pre-encoded Avro in, encoded Avro out)');
  out.push('');
  out.push(row(['stage', 'ns / record', 'records/s', 'note']));
  out.push(row(['---', '---:', '---:', '---']));
  for (const s of r.core.stages) out.push(row([s.stage, fmt(s.nsPerRecord, 0), fmtInt(1e9 / s.nsPerRecord), s.note ?? '']));
  out.push('');
  out.push(
    `${fmtInt(r.core.records)} records, ${fmtInt(r.core.keys)} series, store changes drained every ${r.core.batch} records; ` +
      `median of repeated passes on fresh tasks. Per-operator costs are the slopes of chains of 0 to ${Math.max(...r.core.chains.map.map((p) => p.operators))} operators ` +
      `(r² filter ${fmt(r.core.perOperatorNs.filterR2, 3)}, map ${fmt(r.core.perOperatorNs.mapR2, 3)}).`,
  );
  if (r.core.detectors !== undefined && r.core.detectors.length > 0) {
    out.push('');
    out.push('### Anomaly detectors (detect operator)');
    out.push('');
    out.push(row(['detector', 'ns / record (whole chain)', 'records/s', 'detect share ns', 'state B / series (Avro changelog)', 'heap B / series', 'series']));
    out.push(row(['---', '---:', '---:', '---:', '---:', '---:', '---:']));
    for (const d of r.core.detectors) out.push(row([d.name, fmt(d.nsPerRecord, 0), fmtInt(d.recordsPerSec), fmt(d.operatorNs, 0), fmtInt(d.stateBytesPerSeries), fmtInt(d.heapBytesPerSeries), fmtInt(d.series)]));
    out.push('');
    out.push('Whole chain: decode → detect → encode, on the load above. State: after 250 values of each series, as its changelog holds it (keys + Avro values) and as heap growth.');
  }
  if (r.core.predict !== undefined && r.core.predict.length > 0) {
    out.push('');
    out.push('### Trend prediction (predict, linear): cost as the window grows');
    out.push('');
    out.push(row(['window (points)', 'ns / record (whole chain)', 'records/s', 'predict share ns', 'state B / series']));
    out.push(row(['---:', '---:', '---:', '---:', '---:']));
    for (const p of r.core.predict) out.push(row([fmtInt(p.points), fmt(p.nsPerRecord, 0), fmtInt(p.recordsPerSec), fmt(p.operatorNs, 0), fmtInt(p.stateBytesPerSeries)]));
    out.push('');
    out.push('20 series, each twice as long as the largest window. Each record adds a point to running sums and takes the oldest away; the points are kept in chunks of 64, so the changelog a commit writes does not grow with the window either.');
  }
  if (r.scaling) {
    out.push('');
    out.push('## Scaling with the number of series (window workload)');
    out.push('');
    out.push(row(['series', 'in-process records/s', 'ns / record', 'state B / key (Avro)', 'heap B / key', 'peak RSS MiB', 'Kafka records/s', 'Kafka engine peak RSS MiB']));
    out.push(row(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']));
    for (const k of r.scaling.keys) {
      const point = r.scaling.kafkaKeys.find((x) => x.keys === k.keys);
      const kk = point?.result;
      out.push(
        row([
          fmtInt(k.keys),
          fmtInt(k.recordsPerSec),
          fmt(k.nsPerRecord, 0),
          fmtInt(k.stateBytesPerKey),
          fmtInt(k.heapBytesPerKey),
          fmt(k.peakRss / MB, 0),
          kk ? fmtInt(kk.drain.recordsPerSec) : point?.error ? 'failed ¹' : '–',
          kk ? fmt(kk.engine.peakRssBytes / MB, 0) : '–',
        ]),
      );
    }
    const failed = r.scaling.kafkaKeys.filter((p) => p.error);
    if (failed.length) {
      out.push('');
      out.push(`¹ ${failed.map((p) => `${fmtInt(p.keys)} series: ${p.error}`).join('; ')}`);
    }
    if (r.scaling.kafkaOperators.length) {
      out.push('');
      out.push('## Scaling with the number of operators on Kafka (a filter dropping 25%, then maps)');
      out.push('');
      out.push(row(['operators', 'records/s', 'kafkajs pipe, same produced/consumed', '× kafkajs pipe', 'engine CPU s / M rec', 'in-process ns / record (map chain)']));
      out.push(row(['---:', '---:', '---:', '---:', '---:', '---:']));
      for (const o of r.scaling.kafkaOperators) {
        const inproc = r.core.chains.map.find((p) => p.operators === o.operators);
        out.push(
          row([
            String(o.operators),
            fmtInt(o.result.drain.recordsPerSec),
            fmtInt(o.result.matchedPipe?.recordsPerSec),
            fmtRatio(ratio(o.result.drain.recordsPerSec, o.result.matchedPipe?.recordsPerSec)),
            fmt(o.result.engine.cpuSecondsPerMillion, 1),
            inproc ? fmt(inproc.nsPerRecord, 0) : '–',
          ]),
        );
      }
    }
  }
  const others = r.failures.filter((x) => !WORKLOAD_NAMES.has(x.name));
  if (others.length) {
    out.push('');
    out.push('## Runs the engine could not finish');
    out.push('');
    for (const f of others) out.push(`- ${f.name}: ${f.error}`);
  }
  if (r.profiles?.length) {
    out.push('');
    out.push('## Where the engine spends its CPU (profile of the drain, self time)');
    out.push('');
    out.push(row(['workload', 'busy', 'top areas', 'top functions']));
    out.push(row(['---', '---:', '---', '---']));
    for (const p of r.profiles) {
      const s = p.summary;
      out.push(
        row([
          p.workload,
          `${fmt((s.busyMs / s.totalMs) * 100, 0)}%`,
          s.categories.slice(0, 4).map((c) => `${c.category} ${fmt(c.percent, 0)}%`).join(', '),
          s.functions.filter((f) => f.category !== 'GC').slice(0, 3).map((f) => `\`${f.function}\` (${f.location || f.category}) ${fmt(f.percent, 1)}%`).join(', '),
        ]),
      );
    }
    for (const p of r.profiles) {
      out.push('');
      out.push(`### ${p.workload} (${p.file})`);
      out.push('');
      out.push(profileMarkdown(p.summary, 12));
    }
  }
  if (r.charts?.length) {
    out.push('');
    out.push('## Charts');
    out.push('');
    for (const c2 of r.charts) out.push(`![${c2}](charts/${c2})`);
  }
  out.push('');
  return out.join('\n');
}
