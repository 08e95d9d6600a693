import { describe, expect, it } from 'vitest';
import { brokerBound, fmtRatio, ratiosFor, summaryMarkdown } from '../../bench/lib/report.ts';
import type { BenchResult } from '../../bench/lib/report.ts';
import type { KafkaRunResult } from '../../bench/lib/kafka-bench.ts';

function run(label: string, rate: number, forward: number): KafkaRunResult {
  return {
    label,
    records: 100_000,
    avgRecordBytes: 77,
    produce: { records: 100_000, seconds: 1, recordsPerSec: 100_000 },
    drain: { seconds: 2, records: 2 * rate, recordsPerSec: rate, mbPerSec: (rate * 77) / 1048576, redone: false },
    forward,
    engine: { cpuSeconds: 1, cpuSecondsPerMillion: 10, recordsPerCoreSecond: 100_000, coresUsed: 0.5, peakRssBytes: 300 * 1048576 },
    broker: { cpuSeconds: 0.2, cpuSecondsPerMillion: 2 },
    latency: { rate: 1000, seconds: 5, sent: 5000, outputs: 5000, ms: { count: 5000, min: 1, mean: 20, p50: 15, p99: 90, p999: 120, max: 150 } },
  };
}

const ceilings: BenchResult['ceilings'] = {
  pipe: run('pipe', 30_000, 1),
  producerPerf: { records: 100_000, recordsPerSec: 100_000, mbPerSec: 7, avgLatencyMs: 1, maxLatencyMs: 2, p50Ms: 1, p95Ms: 1, p99Ms: 1, p999Ms: 1 },
  consumerPerf: { records: 100_000, mb: 7, recordsPerSec: 150_000, mbPerSec: 10, rebalanceMs: 300, fetchMs: 500, fetchRecordsPerSec: 200_000, fetchMbPerSec: 14 },
  brokerRecordsPerSec: 66_666.67,
};

describe('ratios', () => {
  it('bounds a workload by the perf tools for its produced/consumed ratio', () => {
    expect(brokerBound(ceilings, 1)).toBeCloseTo(66_666.667, 2);
    expect(brokerBound(ceilings, 0.5)).toBeCloseTo(100_000, 6);
    expect(brokerBound({ ...ceilings, consumerPerf: undefined }, 1)).toBeUndefined();
  });

  it('divides the throughput by each ceiling', () => {
    const matched = { forward: 0.5, records: 100_000, seconds: 2, recordsPerSec: 50_000, cpuSecondsPerMillion: 5 };
    const r = ratiosFor(40_000, ceilings, matched, brokerBound(ceilings, 0.5));
    expect(r.pipe).toBeCloseTo(0.8, 12);
    expect(r.broker).toBeCloseTo(0.4, 12);
    expect(r.fullPipe).toBeCloseTo(40_000 / 30_000, 12);
    expect(r.producerPerf).toBeCloseTo(0.4, 12);
    expect(r.consumerPerf).toBeCloseTo(0.2, 12);
    expect(fmtRatio(r.pipe)).toBe('0.80×');
    expect(fmtRatio(null)).toBe('–');
  });
});

describe('summaryMarkdown', () => {
  it('prints a row per workload with its ratios', () => {
    const matched = { forward: 0.5, records: 100_000, seconds: 2, recordsPerSec: 50_000, cpuSecondsPerMillion: 5 };
    const bound = brokerBound(ceilings, 0.5);
    const w = { ...run('passthrough', 40_000, 0.5), name: 'passthrough' as const, topology: 'bench/topologies/passthrough.yaml', matchedPipe: matched, brokerBound: bound, ratios: ratiosFor(40_000, ceilings, matched, bound) };
    const result: BenchResult = {
      format: 'vigil-bench/1',
      runId: 'test',
      mode: 'quick',
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T00:01:00.000Z',
      seconds: 60,
      machine: { hostname: 'h', platform: 'linux', kernel: '6', arch: 'x64', cpus: 2, cpuModel: 'cpu', memoryBytes: 24 * 1024 ** 3, loadAverage: [1, 1, 1], node: 'v20', java: '17', kafka: '4.1.1' },
      broker: { brokers: ['127.0.0.1:39092'], local: true, pid: 1 },
      settings: {
        load: { records: 100_000, keys: 1000, recordBytes: 0, outOfOrderFraction: 0.05, maxOutOfOrderMs: 500, anomalyFraction: 0.01, seed: 1, spanMs: 1, startTime: 0, windowMs: 5000, batchSize: 2000 },
        latency: { seconds: 5, load: 0.5 },
        drain: { minSeconds: 2, targetSeconds: 3 },
        client: {},
        producerPerfProps: {},
        consumerPerfProps: {},
      },
      ceilings,
      workloads: [w],
      core: {
        records: 1000,
        keys: 10,
        batch: 100,
        decodeNs: 500,
        encodeNs: 500,
        chains: { filter: [{ operators: 0, nsPerRecord: 2000 }], map: [{ operators: 0, nsPerRecord: 2000 }] },
        perOperatorNs: { filter: 50, map: 250, aggregate: 5000, filterR2: 0.9, mapR2: 0.99 },
        workloads: [],
        stages: [{ stage: 'Avro decode (MetricSample)', nsPerRecord: 500 }],
      },
      failures: [
        { name: 'window', error: 'The request included a message larger than the max message size the server will accept' },
        { name: 'chain of 16 operators', error: 'no progress for 60 s' },
      ],
    };
    const md = summaryMarkdown(result);
    expect(md).toContain('| passthrough | 0.500 | 40,000 | 2.94 | 50,000 | 0.80× | 100,000 | 0.40× |');
    expect(md).toContain('| raw kafkajs pipe (ceiling) | 1.000 | 30,000 |');
    expect(md).toContain('| Avro decode (MetricSample) | 500 | 2,000,000 |');
    // What the engine could not finish is reported, not dropped.
    expect(md).toContain('| window | – | failed: The request included a message larger than the max message size the server will accept |');
    expect(md).toContain('- chain of 16 operators: no progress for 60 s');
  });
});
