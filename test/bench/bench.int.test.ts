// The benchmark end to end on the test broker, at a size that says nothing about speed: every
// workload drains its whole backlog through the real engine, the ceilings are measured, and the
// figures the README promises (ratios to both ceilings, latency, CPU) are present and sane.
// Speed is not asserted anywhere; `npm run bench` is where figures are read.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultOptions, runBench } from '../../bench/lib/run-bench.ts';
import type { BenchResult } from '../../bench/lib/report.ts';
import { WORKLOADS } from '../../bench/lib/topologies.ts';
import { brokers } from '../kafka.ts';

describe('vigil bench on the test broker', () => {
  let out: string;
  let result: BenchResult;
  let dir: string;
  const saved = process.env.KAFKA_BROKERS;

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'vigil-bench-test-'));
    process.env.KAFKA_BROKERS = brokers().join(',');
    ({ result, dir } = await runBench({
      ...defaultOptions(true),
      records: 20_000,
      keys: 50,
      latencySeconds: 4, // a 5 s window must close inside the phase (it may double)
      // Short drains are redone with a backlog sized for 1 s (the precision is not the point here,
      // but each ceiling must still see enough records to be timed at all).
      minDrainSeconds: 0.5,
      targetDrainSeconds: 1,
      coreRecords: 3000,
      outDir: out,
      charts: true,
    }));
  }, 600_000);

  afterAll(async () => {
    if (saved === undefined) delete process.env.KAFKA_BROKERS;
    else process.env.KAFKA_BROKERS = saved;
    await rm(out, { recursive: true, force: true });
  });

  it('drains every workload through the engine and rates it against both ceilings', () => {
    expect(result.failures).toEqual([]);
    expect(result.workloads.map((w) => w.name)).toEqual([...WORKLOADS]);
    // A drain is only measured once every record of the backlog was processed; its rate is taken
    // from the first processed batch to the last, so it spans fewer records than the backlog.
    expect(result.ceilings.pipe.records).toBeGreaterThanOrEqual(20_000);
    expect(result.ceilings.producerPerf?.recordsPerSec).toBeGreaterThan(0);
    expect(result.ceilings.consumerPerf?.fetchRecordsPerSec).toBeGreaterThan(0);
    for (const w of result.workloads) {
      expect(w.records, w.name).toBeGreaterThanOrEqual(w.drain.redone ? 10_000 : 20_000);
      expect(w.drain.records, w.name).toBeGreaterThan(0);
      expect(w.drain.records, w.name).toBeLessThanOrEqual(w.records);
      expect(w.ratios.pipe, w.name).toBeGreaterThan(0);
      expect(w.ratios.broker, w.name).toBeGreaterThan(0);
      expect(w.forward, w.name).toBeGreaterThan(0);
      expect(w.latency.outputs, w.name).toBeGreaterThan(0);
      expect(w.engine.cpuSecondsPerMillion, w.name).toBeGreaterThan(0);
    }
    // The window workload keeps state; passthrough and monitor forward some of their input.
    expect(result.workloads.find((w) => w.name === 'window')!.engine.stateBytesPerKey).toBeGreaterThan(0);
  });

  it('writes the result file, the summary with the ratio tables, and the charts', async () => {
    const json = JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')) as BenchResult;
    expect(json.machine.cpus).toBeGreaterThan(0);
    expect(json.workloads).toHaveLength(WORKLOADS.length);
    const md = await readFile(join(dir, 'summary.md'), 'utf8');
    for (const name of ['raw kafkajs pipe (ceiling)', ...WORKLOADS]) expect(md).toMatch(new RegExp(`^\\| ${name.replace(/[()]/g, '\\$&')} \\|.*×`, 'm'));
    expect(md).toContain('## Engine core in-process');
    for (const chart of result.charts ?? []) expect(existsSync(join(dir, 'charts', chart)), chart).toBe(true);
    expect(result.charts?.length).toBeGreaterThan(0);
  });
});
