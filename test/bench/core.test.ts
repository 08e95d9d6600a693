import { describe, expect, it } from 'vitest';
import { CoreHarness, benchSerde, coreLoad, measurePlan } from '../../bench/lib/core.ts';
import { chainYaml, planText } from '../../bench/lib/topologies.ts';
import { loadSchemaCatalog } from '../../schemas/serde.ts';

const spec = { kind: 'metric' as const, records: 500, keys: 10, recordBytes: 0, outOfOrderFraction: 0, maxOutOfOrderMs: 0, anomalyFraction: 0, seed: 3, startTime: 1_700_000_000_000, spanMs: 1000 };

describe('the in-process core harness', () => {
  it('drives a chain: every record decoded, through k operators, encoded', async () => {
    const serde = benchSerde();
    const load = await coreLoad(serde, loadSchemaCatalog().get('vigil.telemetry.MetricSample')!, 'm-value', spec);
    const plan = planText(chainYaml('map', 3));
    expect(plan.subtopologies[0]!.nodes.map((n) => n.name)).toEqual(['m1', 'm2', 'm3']);
    for (const s of plan.topology.sources) serde.addReaderSchema(s.schema);
    const h = new CoreHarness(plan, serde);
    await h.prepare();
    const r = h.pass([{ topic: plan.topology.sources[0]!.topic, load }], 100);
    expect(r).toMatchObject({ records: 500, outputs: 500, deadLetters: 0 });
    expect(r.outputBytes).toBeGreaterThan(500 * 50);
  });

  it('measures a zero-operator chain (source straight to sink)', async () => {
    const serde = benchSerde();
    const load = await coreLoad(serde, loadSchemaCatalog().get('vigil.telemetry.MetricSample')!, 'm-value', spec);
    const plan = planText(chainYaml('filter', 0));
    const m = await measurePlan(plan, serde, [{ topic: plan.topology.sources[0]!.topic, load }], { repeat: 1, batch: 100, warmup: 100 });
    expect(m.records).toBe(500);
    expect(m.outputsPerRecord).toBe(1);
    expect(m.samples).toHaveLength(1);
    expect(m.nsPerRecord).toBeGreaterThan(0);
  });
});
