// Engine metrics in Prometheus format (prom-client: the standard Node client, so exposition
// format, histograms and process metrics are not hand-written) and the /metrics + /health server.
import http from 'node:http';
import client from 'prom-client';
import { advertisedUrl } from '../kernel/net.ts';

export class EngineMetrics {
  readonly registry = new client.Registry();
  readonly recordsIn: client.Counter<'topology' | 'node'>;
  readonly recordsOut: client.Counter<'topology' | 'node'>;
  readonly operatorErrors: client.Counter<'topology' | 'node'>;
  readonly operatorEvents: client.Counter<'topology' | 'node' | 'event'>;
  readonly operatorDurations: client.Histogram<'topology' | 'node' | 'what'>;
  readonly operatorStates: client.Gauge<'topology' | 'node' | 'task' | 'name'>;
  readonly consumed: client.Counter<'topology' | 'topic'>;
  readonly produced: client.Counter<'topology' | 'topic'>;
  readonly deadLettered: client.Counter<'topology' | 'stage' | 'reason'>;
  readonly misplaced: client.Counter<'topology' | 'topic'>;
  readonly lag: client.Gauge<'topology' | 'topic' | 'partition'>;
  readonly watermark: client.Gauge<'topology' | 'task'>;
  readonly stateEntries: client.Gauge<'topology' | 'task' | 'store'>;
  readonly restoreRecords: client.Counter<'topology' | 'store'>;
  readonly restoreRemaining: client.Gauge<'topology' | 'task'>;
  readonly restoreRate: client.Gauge<'topology'>;
  readonly commitLatency: client.Histogram<'topology' | 'guarantee'>;
  readonly tasks: client.Gauge<'topology' | 'state'>;

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'vigil_process_' });
    const r = [this.registry];
    this.recordsIn = new client.Counter({ name: 'vigil_operator_records_in_total', help: 'Records delivered to an operator', labelNames: ['topology', 'node'], registers: r });
    this.recordsOut = new client.Counter({ name: 'vigil_operator_records_out_total', help: 'Records forwarded by an operator', labelNames: ['topology', 'node'], registers: r });
    this.operatorErrors = new client.Counter({ name: 'vigil_operator_errors_total', help: 'Records an operator threw on', labelNames: ['topology', 'node'], registers: r });
    this.operatorEvents = new client.Counter({ name: 'vigil_operator_events_total', help: 'Operator-specific counters (e.g. late records, windows emitted)', labelNames: ['topology', 'node', 'event'], registers: r });
    this.operatorDurations = new client.Histogram({
      name: 'vigil_operator_duration_seconds',
      help: 'Durations an operator measures (e.g. what="lookup": an HTTP lookup, retries included)',
      labelNames: ['topology', 'node', 'what'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    });
    this.operatorStates = new client.Gauge({
      name: 'vigil_operator_state',
      help: 'Operator-specific gauges per task (e.g. name="breaker": 0 closed, 1 half-open, 2 open)',
      labelNames: ['topology', 'node', 'task', 'name'],
      registers: r,
    });
    this.consumed = new client.Counter({ name: 'vigil_records_consumed_total', help: 'Records consumed per topic', labelNames: ['topology', 'topic'], registers: r });
    this.produced = new client.Counter({ name: 'vigil_records_produced_total', help: 'Records produced per topic (outputs, changelogs, dead letters)', labelNames: ['topology', 'topic'], registers: r });
    this.deadLettered = new client.Counter({ name: 'vigil_dead_lettered_total', help: 'Records sent to the dead-letter topic', labelNames: ['topology', 'stage', 'reason'], registers: r });
    this.misplaced = new client.Counter({
      name: 'vigil_source_misplaced_records_total',
      help: "Records of a keyed source on another partition than murmur2 puts their key (the producer partitions otherwise: set the source's partitioner: unknown)",
      labelNames: ['topology', 'topic'],
      registers: r,
    });
    this.lag = new client.Gauge({ name: 'vigil_consumer_lag', help: 'Records between the last consumed offset and the partition end', labelNames: ['topology', 'topic', 'partition'], registers: r });
    this.watermark = new client.Gauge({ name: 'vigil_task_watermark_ms', help: 'Event-time watermark of a task', labelNames: ['topology', 'task'], registers: r });
    this.stateEntries = new client.Gauge({ name: 'vigil_state_entries', help: 'Entries in a state store of a task', labelNames: ['topology', 'task', 'store'], registers: r });
    this.restoreRecords = new client.Counter({ name: 'vigil_restore_records_total', help: 'Changelog records replayed into stores', labelNames: ['topology', 'store'], registers: r });
    this.restoreRemaining = new client.Gauge({ name: 'vigil_restore_remaining_records', help: 'Changelog records left to replay before a task is ready', labelNames: ['topology', 'task'], registers: r });
    this.restoreRate = new client.Gauge({ name: 'vigil_restore_records_per_second', help: 'Rate of the last restore', labelNames: ['topology'], registers: r });
    this.commitLatency = new client.Histogram({
      name: 'vigil_commit_seconds',
      help: 'Time to produce a batch and commit it (transaction or offset commit)',
      labelNames: ['topology', 'guarantee'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    });
    this.tasks = new client.Gauge({ name: 'vigil_tasks', help: 'Tasks by state (restoring, running)', labelNames: ['topology', 'state'], registers: r });
  }
}

export interface HealthSource {
  /** True once every assigned task has restored its state. */
  ready(): boolean;
  status(): Record<string, unknown>;
}

/** Handles a request it knows (returns true), or leaves it (false). */
export type ExtraHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>;

/** Serves GET /metrics (Prometheus text) and GET /health (200 when ready, else 503), and what `extra` handles (/ack). */
export async function serveMetrics(
  metrics: EngineMetrics,
  health: HealthSource,
  port: number,
  host = '127.0.0.1',
  extra?: ExtraHandler,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    void (async () => {
      if (extra !== undefined && (await extra(req, res))) return;
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(await metrics.registry.metrics());
      } else if (req.url === '/health') {
        const ok = health.ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: ok ? 'ready' : 'starting', ...health.status() }));
      } else {
        res.writeHead(404).end();
      }
    })().catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  // A slow or stalled client cannot hold a request open for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: advertisedUrl(host, actual),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
