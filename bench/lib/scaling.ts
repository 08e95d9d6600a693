// One point of the key-count scaling curve, in-process: the window workload over a load with a
// given number of series, measured in a fresh child process (bench/lib/child.ts, --expose-gc) so
// that heap and peak RSS belong to this point alone.
import { MemoryWindowStore } from '../../runtime/stores.ts';
import { loadSchemaCatalog } from '../../schemas/serde.ts';
import { CoreHarness, benchSerde, coreLoad } from './core.ts';
import type { LoadSpec } from './load.ts';
import { WORKLOAD_FILES, loadBenchPlan } from './topologies.ts';

/** Heap growth below this is within what a full collection leaves behind from run to run. */
const HEAP_NOISE_BYTES = 4 * 1024 * 1024;

export interface KeyPointSpec {
  keys: number;
  records: number;
  seed: number;
  /** Records per batch (changelog drain). */
  batch: number;
  /** The window workload's window size (ms), to spread event times over a few windows. */
  windowMs: number;
}

export interface KeyPointResult {
  keys: number;
  records: number;
  nsPerRecord: number;
  recordsPerSec: number;
  /** Operator state at the end (open windows): approximate bytes (keys + JSON values). */
  stateBytes: number;
  stateEntries: number;
  /** Distinct keys with state at the end. */
  stateKeys: number;
  stateBytesPerKey: number;
  /** Heap growth from before the run to after it (both after a full GC), per key with state. */
  heapBytesPerKey: number;
  heapUsedBefore: number;
  heapUsedAfter: number;
  peakRss: number;
}

/** Windows the load's event times span: about 20 records per series and window, 1 to 6 windows. */
export function windowsFor(records: number, keys: number): number {
  return Math.max(1, Math.min(6, Math.round(records / (keys * 20))));
}

/** Event-time span (ms) of a load of `records` over `keys` series: whole windows (see windowsFor). */
export function spanFor(records: number, keys: number, windowMs: number): number {
  return windowsFor(records, keys) * windowMs - 1;
}

function collect(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

export async function runKeyPoint(spec: KeyPointSpec): Promise<KeyPointResult> {
  const catalog = loadSchemaCatalog();
  const serde = benchSerde();
  const plan = loadBenchPlan(WORKLOAD_FILES.window);
  for (const s of plan.topology.sources) serde.addReaderSchema(s.schema);
  const source = plan.topology.sources[0]!;
  const start = 1_700_000_000_000;
  const load: LoadSpec = {
    kind: 'metric',
    records: spec.records,
    keys: spec.keys,
    recordBytes: 0,
    outOfOrderFraction: 0,
    maxOutOfOrderMs: 0,
    anomalyFraction: 0.01,
    seed: spec.seed,
    startTime: start,
    spanMs: spanFor(spec.records, spec.keys, spec.windowMs),
  };
  const encoded = await coreLoad(serde, catalog.get(source.schemaName)!, `${source.topic}-value`, load);
  const inputs = [{ topic: source.topic, load: encoded }];
  // Warm the JIT on a throw-away instance (garbage before the heap is measured).
  await (async () => {
    const warm = new CoreHarness(plan, serde);
    await warm.prepare();
    warm.pass(inputs, spec.batch, Math.min(20_000, spec.records));
  })();
  const harness = new CoreHarness(plan, serde);
  await harness.prepare();
  const heapUsedBefore = collect();
  const r = harness.pass(inputs, spec.batch);
  const heapUsedAfter = collect();
  const keys = new Set<string>();
  for (const t of harness.tasks) for (const s of t.stores) if (s instanceof MemoryWindowStore) for (const [k] of s.all()) keys.add(k);
  const stateBytes = harness.stateBytes();
  const nsPerRecord = r.elapsedNs / r.records;
  return {
    keys: spec.keys,
    records: r.records,
    nsPerRecord,
    recordsPerSec: 1e9 / nsPerRecord,
    stateBytes,
    stateEntries: harness.stateEntries(),
    stateKeys: keys.size,
    stateBytesPerKey: keys.size ? stateBytes / keys.size : Number.NaN,
    // Heap growth under a few MiB is the collector's noise, not the state: not reported.
    heapBytesPerKey: keys.size && heapUsedAfter - heapUsedBefore >= HEAP_NOISE_BYTES ? (heapUsedAfter - heapUsedBefore) / keys.size : Number.NaN,
    heapUsedBefore,
    heapUsedAfter,
    peakRss: process.resourceUsage().maxRSS * 1024,
  };
}
