// Synthetic telemetry: the demo's producer and the benchmarks' load generator. Deterministic for
// a seed, so tests and benchmark runs can compute the expected results of what they sent.

/** entity: inventory rows (a table), one per key in turn. */
export type TelemetryKind = 'metric' | 'log' | 'event' | 'snapshot' | 'entity';

export const SCHEMA_OF_KIND: Record<TelemetryKind, string> = {
  metric: 'vigil.telemetry.MetricSample',
  log: 'vigil.telemetry.LogLine',
  event: 'vigil.telemetry.Event',
  snapshot: 'vigil.telemetry.StateSnapshot',
  entity: 'vigil.inventory.Entity',
};

export interface GeneratorOptions {
  kind: TelemetryKind;
  /** Distinct series (hosts) to spread records over. */
  keys?: number;
  seed?: number;
  /** Event time of the first record (ms). */
  startTime?: number;
  /** Event time advance per record (ms); with the default 0 event time follows the wall clock. */
  stepMs?: number;
  /** Fraction of records whose event time is pushed back by up to maxOutOfOrderMs. */
  outOfOrderFraction?: number;
  maxOutOfOrderMs?: number;
  /** Fraction of records that carry an injected anomaly (a spike, an ERROR line, a DOWN status). */
  anomalyFraction?: number;
  /** Pads each record with a tag so the encoded size reaches about this many bytes. */
  recordBytes?: number;
}

export interface GeneratedRecord {
  key: string;
  value: Record<string, unknown>;
  /** True when an anomaly was injected into this record. */
  anomaly: boolean;
}

/** mulberry32: a small, fast, seedable PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const METRICS = ['cpu.utilization', 'memory.used_percent', 'http.latency.p99', 'disk.io_wait'];
const SERVICES = ['checkout', 'search', 'auth', 'billing', 'inventory'];
const LEVELS = ['DEBUG', 'INFO', 'INFO', 'INFO', 'WARN'];

export class TelemetryGenerator {
  private readonly rnd: () => number;
  private readonly keys: string[];
  private readonly o: Required<GeneratorOptions>;
  private n = 0;
  private readonly pad: string;

  constructor(opts: GeneratorOptions) {
    this.o = {
      keys: 20,
      seed: 1,
      startTime: Date.now(),
      stepMs: 0,
      outOfOrderFraction: 0,
      maxOutOfOrderMs: 0,
      anomalyFraction: 0.01,
      recordBytes: 0,
      ...opts,
    };
    this.rnd = prng(this.o.seed);
    this.keys = Array.from({ length: this.o.keys }, (_, i) => `host-${String(i).padStart(String(this.o.keys - 1).length, '0')}`);
    this.pad = this.o.recordBytes > 100 ? 'x'.repeat(this.o.recordBytes - 100) : '';
  }

  /** Count of records generated so far. */
  get count(): number {
    return this.n;
  }

  next(): GeneratedRecord {
    const i = this.n++;
    const r = this.rnd;
    const key = this.o.kind === 'entity' ? this.keys[i % this.keys.length]! : this.keys[Math.floor(r() * this.keys.length)]!;
    let ts = this.o.stepMs > 0 ? this.o.startTime + i * this.o.stepMs : Date.now();
    if (this.o.outOfOrderFraction > 0 && r() < this.o.outOfOrderFraction) ts -= Math.floor(r() * this.o.maxOutOfOrderMs);
    const anomaly = r() < this.o.anomalyFraction;
    const tags: Record<string, string> = { region: r() < 0.5 ? 'eu-west' : 'us-east' };
    if (this.pad) tags.pad = this.pad;
    switch (this.o.kind) {
      case 'metric': {
        const name = METRICS[Math.floor(r() * METRICS.length)]!;
        const base = name === 'http.latency.p99' ? 120 : 40;
        const value = anomaly ? base * (name === 'http.latency.p99' ? 5 + r() * 3 : 3 + r() * 2) : base + (r() - 0.5) * base * 0.4;
        const unit = name === 'http.latency.p99' ? 'ms' : 'percent';
        return { key, anomaly, value: { timestamp: ts, name, host: key, value: Math.min(value, name === 'http.latency.p99' ? 1e6 : 100), unit, tags } };
      }
      case 'log': {
        const level = anomaly ? (r() < 0.8 ? 'ERROR' : 'FATAL') : LEVELS[Math.floor(r() * LEVELS.length)]!;
        const service = SERVICES[Math.floor(r() * SERVICES.length)]!;
        const message = anomaly ? `request failed: upstream ${service} timed out after 5000 ms` : `handled request in ${Math.floor(r() * 200)} ms`;
        return { key, anomaly, value: { timestamp: ts, host: key, service, level, message, traceId: null, attributes: tags } };
      }
      case 'event': {
        const type = anomaly ? 'auth.failed' : r() < 0.5 ? 'deploy.finished' : 'job.completed';
        const severity = anomaly ? 'ERROR' : 'INFO';
        return { key, anomaly, value: { timestamp: ts, type, source: 'generator', entity: key, severity, attributes: tags } };
      }
      case 'entity': {
        const service = SERVICES[i % SERVICES.length]!;
        return {
          key,
          anomaly: false,
          value: { entity: key, kind: 'host', service, team: `team-${service}`, tier: `tier-${1 + (i % 3)}`, region: tags.region, depends_on: [], labels: tags },
        };
      }
      case 'snapshot': {
        const status = anomaly ? 'DOWN' : r() < 0.05 ? 'DEGRADED' : 'OK';
        return {
          key,
          anomaly,
          value: { timestamp: ts, entity: key, kind: 'service', status, metrics: { queue_depth: Math.floor(r() * 100), error_rate: anomaly ? 0.5 : r() * 0.01 }, labels: tags },
        };
      }
    }
  }
}
