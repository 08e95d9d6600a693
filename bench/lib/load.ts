// The load generator: synthetic Avro telemetry (connectors/telemetry-generator.ts), generated and
// encoded BEFORE anything is timed, then produced to Kafka at a target rate or as fast as
// possible, with a progress bar showing the live rate.
//
// Event time. A backlog (drain phase) carries event times spread evenly over `spanMs` from
// `startTime`, so windows open and close while it is processed. A live phase (latency) stamps
// each record with the wall clock at send time: the pre-encoded value's timestamp (the first
// field of every telemetry schema, an Avro zig-zag varint right after the 5-byte Confluent
// header) is patched in place, which costs a few byte writes instead of an encode.
import { SingleBar } from 'cli-progress';
import type { BatchProducer, OutRecord } from '../../connectors/kafka-client.ts';
import { TelemetryGenerator, prng } from '../../connectors/telemetry-generator.ts';
import type { TelemetryKind } from '../../connectors/telemetry-generator.ts';
import { HEADER_SIZE } from '../../schemas/serde.ts';

export interface LoadSpec {
  kind: TelemetryKind;
  records: number;
  /** Distinct series (hosts), 10 to 1,000,000. */
  keys: number;
  /** Pad records to about this many encoded bytes (0 = natural size). */
  recordBytes: number;
  /** Fraction of records whose event time is pushed back by up to maxOutOfOrderMs. */
  outOfOrderFraction: number;
  maxOutOfOrderMs: number;
  /** Fraction of records carrying an injected anomaly. */
  anomalyFraction: number;
  seed: number;
  /** Event time of the first record (ms). */
  startTime: number;
  /** Event times spread evenly over this many ms. */
  spanMs: number;
}

export interface EncodedLoad {
  kind: TelemetryKind;
  keys: Buffer[];
  values: Buffer[];
  /** Per record: ms its event time lags behind the in-order time (out-of-order injection). */
  lateness: Float64Array;
  /** Key + value bytes of all records. */
  bytes: number;
  valueBytes: number;
  anomalies: number;
}

/** Event time of record i of n spread over spanMs from start (integer ms). */
export function spreadTime(start: number, spanMs: number, i: number, n: number): number {
  return start + Math.floor((i * spanMs) / Math.max(1, n));
}

/**
 * Generates and encodes a load. `encode` is the serde's encoder bound to the registered schema
 * id of the topic; values are Confluent-framed Avro.
 */
export function generateLoad(spec: LoadSpec, encode: (value: Record<string, unknown>) => Buffer): EncodedLoad {
  const gen = new TelemetryGenerator({
    kind: spec.kind,
    keys: spec.keys,
    seed: spec.seed,
    startTime: spec.startTime,
    stepMs: 1,
    anomalyFraction: spec.anomalyFraction,
    recordBytes: spec.recordBytes,
  });
  const late = prng(spec.seed ^ 0x5eed);
  const n = spec.records;
  const keys: Buffer[] = new Array(n);
  const values: Buffer[] = new Array(n);
  const lateness = new Float64Array(n);
  const keyBuffers = new Map<string, Buffer>();
  let bytes = 0;
  let valueBytes = 0;
  let anomalies = 0;
  for (let i = 0; i < n; i++) {
    const r = gen.next();
    if (r.anomaly) anomalies++;
    let lag = 0;
    if (spec.outOfOrderFraction > 0 && late() < spec.outOfOrderFraction) lag = Math.floor(late() * spec.maxOutOfOrderMs);
    lateness[i] = lag;
    r.value.timestamp = spreadTime(spec.startTime, spec.spanMs, i, n) - lag;
    let k = keyBuffers.get(r.key);
    if (!k) keyBuffers.set(r.key, (k = Buffer.from(r.key)));
    keys[i] = k;
    const v = encode(r.value);
    values[i] = v;
    valueBytes += v.length;
    bytes += v.length + k.length;
  }
  return { kind: spec.kind, keys, values, lateness, bytes, valueBytes, anomalies };
}

// ---------------------------------------------------------------------------------------------
// Timestamp patching (Avro long = zig-zag varint)

/** Zig-zag encoding of a (safe) integer, as an unsigned number. */
export function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

/** Bytes of the minimal varint of a zig-zag encoded long. */
export function varintLongLength(v: number): number {
  let z = zigzag(v);
  let len = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    len++;
  }
  return len;
}

/** Length of the varint starting at `offset` (continuation bits), or -1 when it runs off the buffer. */
export function varintLengthAt(buf: Buffer, offset: number): number {
  for (let i = offset; i < buf.length && i < offset + 10; i++) if ((buf[i]! & 0x80) === 0) return i - offset + 1;
  return -1;
}

/**
 * Overwrites the Avro long at `offset` with `v` when its minimal encoding has the same length as
 * the one there (true for any two epoch-millisecond times within decades of each other); returns
 * false and leaves the buffer alone otherwise.
 */
export function patchLong(buf: Buffer, offset: number, v: number): boolean {
  const len = varintLengthAt(buf, offset);
  if (len < 0 || varintLongLength(v) !== len) return false;
  let z = zigzag(v);
  for (let i = 0; i < len; i++) {
    const low = z % 128;
    z = Math.floor(z / 128);
    buf[offset + i] = i < len - 1 ? low | 0x80 : low;
  }
  return true;
}

/** Reads the Avro long at `offset` (for tests and checks). */
export function readLong(buf: Buffer, offset: number): number {
  let z = 0;
  let mul = 1;
  for (let i = offset; ; i++) {
    const b = buf[i]!;
    z += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
  }
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** Offset of the event-time field in a framed telemetry value: the first field, after the header. */
export const TIMESTAMP_OFFSET = HEADER_SIZE;

// ---------------------------------------------------------------------------------------------
// Producing

export interface ProduceLoadOptions {
  producer: BatchProducer;
  topic: string;
  load: EncodedLoad;
  /** Records per second; 0 = as fast as possible. */
  rate: number;
  /** Records per produce request. */
  batchSize: number;
  /** Stop after this many records (default: the whole load, once). With `live` the load is cycled. */
  count?: number;
  /** Stop after this many ms (live phases). */
  durationMs?: number;
  /** Stamp event time = wall clock at send (minus the record's out-of-order lateness). */
  live?: boolean;
  signal?: AbortSignal;
  onProgress?: (sent: number, bytes: number) => void;
}

export interface ProduceLoadResult {
  sent: number;
  bytes: number;
  seconds: number;
  /** Wall time (ms) the first batch was sent. */
  startedAt: number;
}

/** Produces pre-encoded records; with `live`, patches event times to the send time first. */
export async function produceLoad(o: ProduceLoadOptions): Promise<ProduceLoadResult> {
  const { load } = o;
  const n = load.values.length;
  const count = o.count ?? n;
  const startedAt = Date.now();
  const deadline = o.durationMs === undefined ? Number.POSITIVE_INFINITY : startedAt + o.durationMs;
  let sent = 0;
  let bytes = 0;
  let i = 0;
  while (sent < count && !o.signal?.aborted && Date.now() < deadline) {
    const m = Math.min(o.batchSize, count - sent);
    const batch: OutRecord[] = new Array(m);
    const now = Date.now();
    for (let j = 0; j < m; j++) {
      const value = load.values[i]!;
      const ts = o.live ? now - load.lateness[i]! : undefined;
      if (ts !== undefined && !patchLong(value, TIMESTAMP_OFFSET, ts)) throw new Error('cannot patch the event time of a pre-encoded record');
      batch[j] = { topic: o.topic, key: load.keys[i]!, value, timestamp: ts };
      bytes += value.length + load.keys[i]!.length;
      i = i + 1 === n ? 0 : i + 1;
    }
    await o.producer.send(batch);
    sent += m;
    o.onProgress?.(sent, bytes);
    if (o.rate > 0) {
      const wait = startedAt + (sent / o.rate) * 1000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
  return { sent, bytes, seconds: (Date.now() - startedAt) / 1000, startedAt };
}

// ---------------------------------------------------------------------------------------------
// Progress

export interface Progress {
  update(n: number): void;
  stop(): void;
}

/**
 * A progress bar on stderr with the live rate (over the last ~2 s). Off a terminal it prints a
 * plain line every 5 s instead of redrawing.
 */
export function progressBar(label: string, total: number, unit = 'rec'): Progress {
  const bar = new SingleBar({
    format: `${label.padEnd(22)} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | {duration}s`,
    barsize: 24,
    hideCursor: false,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 5000,
    stream: process.stderr,
    fps: 5,
  });
  const window: Array<{ t: number; n: number }> = [{ t: Date.now(), n: 0 }];
  bar.start(Math.max(1, total), 0, { rate: '-' });
  return {
    update(n: number) {
      const t = Date.now();
      window.push({ t, n });
      while (window.length > 2 && t - window[0]!.t > 2000) window.shift();
      const w0 = window[0]!;
      const rate = t > w0.t ? Math.round(((n - w0.n) * 1000) / (t - w0.t)) : 0;
      bar.update(Math.min(n, Math.max(1, total)), { rate: rate.toLocaleString('en-US') });
    },
    stop() {
      bar.stop();
    },
  };
}
