// The cost of the analysis operators in-process: each detector of `detect` (ns per record, state
// per series as its changelog stores it and on the heap), measured on the bench's metric load.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { DETECTORS } from '../../operators/lib/detectors/index.ts';
import type { AvroSerde } from '../../schemas/serde.ts';
import { loadSchemaCatalog } from '../../schemas/serde.ts';
import type { CoreInput } from './core.ts';
import { CoreHarness, coreLoad, measurePlan } from './core.ts';
import type { LoadSpec } from './load.ts';
import { planText } from './topologies.ts';

export interface OperatorCost {
  name: string;
  nsPerRecord: number;
  recordsPerSec: number;
  /** Series in the state pass. */
  series: number;
  /** Keys + Avro values of the operator's stores (what its changelog holds), per series. */
  stateBytesPerSeries: number;
  /** Heap growth over the state pass (after full collections), per series; NaN below the noise. */
  heapBytesPerSeries: number;
}

/** Heap growth below this is the collector's noise, not state. */
const HEAP_NOISE_BYTES = 4 * 1024 * 1024;

let gcFn: (() => void) | undefined;
function fullGc(): number {
  if (gcFn === undefined) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
  return process.memoryUsage().heapUsed;
}

/** Metric samples of `series` series, `perSeries` each, 10 s apart, in order, 1 % with an injected anomaly. */
function seriesLoad(serde: AvroSerde, series: number, perSeries: number, seed: number): ReturnType<typeof coreLoad> {
  const spec: LoadSpec = {
    kind: 'metric',
    records: series * perSeries,
    keys: series,
    recordBytes: 0,
    outOfOrderFraction: 0,
    maxOutOfOrderMs: 0,
    anomalyFraction: 0.01,
    seed,
    startTime: 1_700_000_000_000,
    spanMs: perSeries * 10_000,
  };
  return coreLoad(serde, loadSchemaCatalog().get('vigil.telemetry.MetricSample')!, 'bench.metrics-value', spec);
}

/** The topology of one detector: metrics -> detect (per host) -> sink. */
export function detectorYaml(detector: string): string {
  return `version: 1
name: detect-${detector.replace(/_/g, '-')}
sources:
  - { name: metrics, topic: bench.metrics, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp, partitions: 1 }
operators:
  - { name: detect, type: detect, value: value, detector: ${detector} }
sinks:
  - { name: out, from: detect, topic: bench.scored }
`;
}

async function measure(name: string, yaml: string, serde: AvroSerde, throughput: CoreInput[], state: CoreInput[], series: number, repeat: number, batch: number): Promise<OperatorCost> {
  const plan = planText(yaml);
  const m = await measurePlan(plan, serde, throughput, { repeat, batch });
  const h = new CoreHarness(plan, serde);
  await h.prepare();
  const before = fullGc();
  h.pass(state, batch);
  const after = fullGc();
  return {
    name,
    nsPerRecord: m.nsPerRecord,
    recordsPerSec: m.recordsPerSec,
    series,
    stateBytesPerSeries: series > 0 ? h.stateBytes() / series : Number.NaN,
    heapBytesPerSeries: series > 0 && after - before >= HEAP_NOISE_BYTES ? (after - before) / series : Number.NaN,
  };
}

/**
 * Every detector: ns per record on `load` (the core benchmark's metrics), and state per series after
 * a pass over `stateSeries` series of `perSeries` records each.
 */
export async function measureDetectors(
  serde: AvroSerde,
  load: CoreInput['load'],
  opts: { repeat: number; batch: number; stateSeries: number; perSeries: number; seed: number },
  log: (l: string) => void = () => undefined,
): Promise<OperatorCost[]> {
  const stateLoad = await seriesLoad(serde, opts.stateSeries, opts.perSeries, opts.seed);
  const out: OperatorCost[] = [];
  for (const d of DETECTORS.keys()) {
    log(`[bench] core: detector ${d}`);
    out.push(await measure(d, detectorYaml(d), serde, [{ topic: 'bench.metrics', load }], [{ topic: 'bench.metrics', load: stateLoad }], opts.stateSeries, opts.repeat, opts.batch));
  }
  return out;
}

/** The topology of a linear predict over a count window of `points` values per series. */
export function predictYaml(points: number): string {
  return `version: 1
name: predict-${points}
sources:
  - { name: metrics, topic: bench.metrics, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp, partitions: 1 }
operators:
  - { name: trend, type: predict, value: value, fit: linear, points: ${points}, min_points: 2, horizon: 1h, threshold: 1000 }
sinks:
  - { name: out, from: trend, topic: bench.trend }
`;
}

/**
 * Linear predict with count windows of growing size over series long enough to fill them: each
 * record adds a point and takes the oldest away (running sums), so ns/record stays flat.
 */
export async function measurePredictScaling(serde: AvroSerde, sizes: readonly number[], opts: { repeat: number; batch: number; seed: number }, log: (l: string) => void = () => undefined): Promise<Array<OperatorCost & { points: number }>> {
  const series = 20;
  const perSeries = 2 * Math.max(...sizes);
  const load = await seriesLoad(serde, series, perSeries, opts.seed);
  const input = [{ topic: 'bench.metrics', load }];
  const out: Array<OperatorCost & { points: number }> = [];
  for (const points of sizes) {
    log(`[bench] core: predict, linear, window of ${points} points`);
    out.push({ ...(await measure(`predict linear, ${points} points`, predictYaml(points), serde, input, input, series, opts.repeat, opts.batch)), points });
  }
  return out;
}
