import { describe, expect, it } from 'vitest';
import type { OperatorDefinition, RecordSchema, StreamRecord } from '../../kernel/operator.ts';
import { compiled } from '../../kernel/operator.ts';
import type { Plan } from '../../topology/types.ts';
import { singleOperatorPlan } from '../helpers/operators.ts';
import { TestDriver } from '../../runtime/test-driver.ts';

const metric: RecordSchema = {
  type: 'record',
  name: 'M',
  namespace: 't',
  fields: [
    { name: 'timestamp', type: 'long' },
    { name: 'host', type: 'string' },
    { name: 'value', type: 'double' },
  ],
};
const total: RecordSchema = {
  type: 'record',
  name: 'Total',
  namespace: 't',
  fields: [
    { name: 'host', type: 'string' },
    { name: 'sum', type: 'double' },
    { name: 'at', type: 'long' },
  ],
};

/** A running sum per key, emitted by an event-time timer 10 ms after the first record of a key. */
const summer: OperatorDefinition<Record<string, never>> = {
  type: 'test-sum',
  category: 'processing',
  summary: 'test operator',
  config: {},
  compile: () =>
    compiled({
      outputs: [{ name: 'out', schema: total }],
      stores: [{ name: 'sums', kind: 'kv', value: 'double' }],
      create: () => ({
        process(rec, ctx) {
          const store = ctx.kv<number>('sums');
          const host = rec.value.host as string;
          if (rec.value.value === -1) throw new Error('negative one is poison');
          if (!store.has(host)) ctx.schedule({ kind: 'event', at: rec.timestamp + 10, key: host });
          store.put(host, (store.get(host) ?? 0) + (rec.value.value as number));
        },
        onTimer(timer, ctx) {
          const store = ctx.kv<number>('sums');
          ctx.forward({ key: timer.key, timestamp: timer.at, value: { host: timer.key, sum: store.get(timer.key)!, at: timer.at } });
          store.delete(timer.key);
        },
      }),
    }),
};

function plan(partitions = 1): Plan {
  return singleOperatorPlan(summer, {}, metric, { name: 'sum', partitions });
}

const values = (recs: StreamRecord[]) => recs.map((r) => r.value);

describe('TestDriver and Task', () => {
  it('fires event-time timers when the watermark passes them, using persisted state', () => {
    const d = new TestDriver(plan());
    d.pipe('in', { timestamp: 100, host: 'a', value: 1 });
    d.pipe('in', { timestamp: 105, host: 'a', value: 2 });
    expect(d.output('out')).toEqual([]);
    d.pipe('in', { timestamp: 110, host: 'b', value: 5 });
    expect(values(d.output('out'))).toEqual([{ host: 'a', sum: 3, at: 110 }]);
  });

  it('restores stores and timers from the changelog after a restart', () => {
    const d = new TestDriver(plan());
    d.pipe('in', { timestamp: 100, host: 'a', value: 1 });
    d.restart();
    d.pipe('in', { timestamp: 101, host: 'a', value: 4 });
    // The timer scheduled before the restart survives it and fires with the restored sum.
    d.pipe('in', { timestamp: 200, host: 'c', value: 0 });
    expect(values(d.output('out'))).toEqual([{ host: 'a', sum: 5, at: 110 }]);
  });

  it('restores stream time, so the watermark does not go back after a restart', () => {
    const d = new TestDriver(plan());
    d.pipe('in', { timestamp: 500, host: 'a', value: 1 });
    d.restart();
    expect(d.allTasks()[0]!.watermark).toBe(500);
  });

  it('dead-letters the input record an operator throws on and keeps going', () => {
    const d = new TestDriver(plan());
    d.pipe('in', { timestamp: 1, host: 'a', value: -1 });
    d.pipe('in', { timestamp: 2, host: 'a', value: 2 });
    d.pipe('in', { timestamp: 50, host: 'z', value: 0 });
    const dl = d.deadLetters();
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ stage: 'operator', reason: 'operator-error', node: 'sum', detail: 'negative one is poison' });
    expect(dl[0]!.input?.offset).toBe('0');
    expect(values(d.output('out'))).toEqual([{ host: 'a', sum: 2, at: 12 }]);
  });

  it('dead-letters a record the sink schema cannot encode', () => {
    const p = plan();
    p.subtopologies[0]!.sinks[0]!.schema = { ...total, fields: [...total.fields, { name: 'required', type: 'string' }] };
    const d = new TestDriver(p);
    d.pipe('in', { timestamp: 1, host: 'a', value: 1 });
    d.pipe('in', { timestamp: 50, host: 'a', value: 1 });
    expect(d.output('out')).toEqual([]);
    expect(d.deadLetters()[0]).toMatchObject({ stage: 'encode', reason: 'encode-error' });
  });

  it('keeps tasks of different partitions apart', () => {
    const d = new TestDriver(plan(2));
    d.pipe('in', { timestamp: 100, host: 'a', value: 1 }, { partition: 0 });
    d.pipe('in', { timestamp: 100, host: 'a', value: 7 }, { partition: 1 });
    d.pipe('in', { timestamp: 200, host: 'x', value: 0 }, { partition: 0 });
    expect(values(d.output('out'))).toEqual([{ host: 'a', sum: 1, at: 110 }]);
    d.pipe('in', { timestamp: 200, host: 'x', value: 0 }, { partition: 1 });
    expect(values(d.output('out'))).toEqual([{ host: 'a', sum: 1, at: 110 }, { host: 'a', sum: 7, at: 110 }]);
  });
});

describe('an expression over its evaluation budget', () => {
  it('dead-letters the record (reason over-budget) and the next records go on', async () => {
    const { parseTopology } = await import('../../topology/loader.ts');
    const { planTopology } = await import('../../topology/plan.ts');
    const { operatorRegistry } = await import('../../operators/registry.ts');
    const where = Array.from({ length: 40 }, (_, i) => `matches(message, "q${i}")`).join(' || ') + ' || true';
    const d = new TestDriver(
      planTopology(
        parseTopology(
          `version: 1
name: budget
sources:
  - { name: logs, topic: l, schema: vigil.telemetry.LogLine }
operators:
  - { name: f, type: filter, where: '${where}' }
sinks:
  - { name: out, from: f, topic: o }
`,
          'budget.yaml',
          { operators: operatorRegistry },
        ),
      ),
    );
    const line = (message: string) => ({ timestamp: 1, host: 'h', service: 's', level: 'INFO', message, attributes: {} });
    d.pipe('logs', line('x'.repeat(1 << 20)));
    d.pipe('logs', line('small'));
    expect(d.deadLetters().map((x) => [x.stage, x.reason])).toEqual([['operator', 'over-budget']]);
    expect(d.output('out')).toHaveLength(1);
  });
});
