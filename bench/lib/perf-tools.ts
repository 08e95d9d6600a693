// The broker's own ceilings: Kafka's kafka-producer-perf-test and kafka-consumer-perf-test (the
// Java clients' ProducerPerformance and ConsumerPerformance), run from the jars that
// connectors/kafka-jars.ts resolves, and the parsing of what they print.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { javaCommand, tail } from '../../connectors/kafka-jars.ts';

export interface ProducerPerfResult {
  records: number;
  recordsPerSec: number;
  mbPerSec: number;
  avgLatencyMs: number;
  maxLatencyMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  p999Ms: number;
}

export interface ConsumerPerfResult {
  records: number;
  mb: number;
  /** Over the whole run, including the group join (rebalance). */
  recordsPerSec: number;
  mbPerSec: number;
  rebalanceMs: number;
  fetchMs: number;
  /** Over the fetch time only (join excluded): comparable to the harness's drain rates. */
  fetchRecordsPerSec: number;
  fetchMbPerSec: number;
}

const NUM = String.raw`([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)`;
const PRODUCER_FINAL = new RegExp(
  String.raw`^${NUM} records sent, ${NUM} records/sec \(${NUM} MB/sec\), ${NUM} ms avg latency, ${NUM} ms max latency, ` +
    String.raw`${NUM} ms 50th, ${NUM} ms 95th, ${NUM} ms 99th, ${NUM} ms 99\.9th\.?\s*$`,
);

/**
 * Parses ProducerPerformance's output. Its progress lines ("N records sent, R records/sec (M
 * MB/sec), A ms avg latency, X ms max latency.") are skipped: the result is the final line,
 * which adds the latency percentiles.
 */
export function parseProducerPerf(stdout: string): ProducerPerfResult {
  const lines = stdout.split(/\r?\n/).map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = PRODUCER_FINAL.exec(lines[i]!);
    if (!m) continue;
    const v = m.slice(1).map(Number);
    return {
      records: v[0]!,
      recordsPerSec: v[1]!,
      mbPerSec: v[2]!,
      avgLatencyMs: v[3]!,
      maxLatencyMs: v[4]!,
      p50Ms: v[5]!,
      p95Ms: v[6]!,
      p99Ms: v[7]!,
      p999Ms: v[8]!,
    };
  }
  throw new Error(`no final summary line in the producer perf-test output:\n${tail(stdout, 10)}`);
}

/**
 * Parses ConsumerPerformance's output: a CSV header line (start.time, end.time,
 * data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
 * fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec) and a line of values. Columns are found by name.
 */
export function parseConsumerPerf(stdout: string): ConsumerPerfResult {
  const lines = stdout.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const h = lines.findIndex((l) => l.split(',').some((c) => c.trim() === 'data.consumed.in.nMsg' || c.trim() === 'start.time'));
  if (h < 0 || h + 1 >= lines.length) throw new Error(`no stats in the consumer perf-test output:\n${tail(stdout, 10)}`);
  const header = lines[h]!.split(',').map((s) => s.trim());
  const values = lines[h + 1]!.split(',').map((s) => s.trim());
  const col = (name: string): number => {
    const i = header.indexOf(name);
    const v = i < 0 ? Number.NaN : Number(values[i]);
    if (!Number.isFinite(v)) throw new Error(`consumer perf-test output has no numeric '${name}' column`);
    return v;
  };
  return {
    records: col('data.consumed.in.nMsg'),
    mb: col('data.consumed.in.MB'),
    recordsPerSec: col('nMsg.sec'),
    mbPerSec: col('MB.sec'),
    rebalanceMs: col('rebalance.time.ms'),
    fetchMs: col('fetch.time.ms'),
    fetchRecordsPerSec: col('fetch.nMsg.sec'),
    fetchMbPerSec: col('fetch.MB.sec'),
  };
}

/** Renders key=value client properties as the tools take them. */
export function propsArgs(props: Record<string, string | number>): string[] {
  return Object.entries(props).map(([k, v]) => `${k}=${v}`);
}

export interface JavaToolOptions {
  classpath: string;
  /** JVM heap (MiB) of the tool. */
  heapMb?: number;
  timeoutMs?: number;
}

/** Runs a Kafka tool's main class; resolves with its stdout, rejects with the tail of its output. */
export function runJavaTool(mainClass: string, args: string[], opts: JavaToolOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(javaCommand(), [`-Xmx${opts.heapMb ?? 512}m`, '-cp', opts.classpath, mainClass, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString('utf8');
      if (err.length > 100_000) err = err.slice(-50_000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${mainClass} failed (${signal ?? `exit ${code}`}):\n${tail(`${out}\n${err}`, 20)}`));
    });
  });
}

export interface ProducerPerfOptions extends JavaToolOptions {
  brokers: string[];
  topic: string;
  records: number;
  recordSize: number;
  props: Record<string, string | number>;
}

export async function runProducerPerf(o: ProducerPerfOptions): Promise<ProducerPerfResult> {
  const out = await runJavaTool(
    'org.apache.kafka.tools.ProducerPerformance',
    [
      '--topic', o.topic,
      '--num-records', String(o.records),
      '--record-size', String(o.recordSize),
      '--throughput', '-1',
      '--producer-props', `bootstrap.servers=${o.brokers.join(',')}`, ...propsArgs(o.props),
    ],
    o,
  );
  return parseProducerPerf(out);
}

export interface ConsumerPerfOptions extends JavaToolOptions {
  brokers: string[];
  topic: string;
  records: number;
  group: string;
  fetchSize: number;
  /** Written to a consumer.config file. */
  props: Record<string, string | number>;
  configFile: string;
}

export async function runConsumerPerf(o: ConsumerPerfOptions): Promise<ConsumerPerfResult> {
  await writeFile(o.configFile, `${propsArgs(o.props).join('\n')}\n`);
  const out = await runJavaTool(
    'org.apache.kafka.tools.ConsumerPerformance',
    [
      '--bootstrap-server', o.brokers.join(','),
      '--topic', o.topic,
      '--messages', String(o.records),
      '--group', o.group,
      '--fetch-size', String(o.fetchSize),
      '--timeout', '30000',
      '--consumer.config', o.configFile,
    ],
    o,
  );
  return parseConsumerPerf(out);
}
