// absence: "no record for key K within T" (a host stopped sending heartbeats), and the recovery
// when it reports again, per key; keys listed in a table are expected to report even if they never
// did. Per key state in a changelogged store, deadlines as persisted timers.
import type { ConfigIssue, KeyValueStore, OperatorContext, OperatorDefinition, OperatorInstance, RecordSchema, StreamRecord, Timer } from '../kernel/operator.ts';
import { DEFAULT_INPUT, compiled, refused } from '../kernel/operator.ts';
import { nullable, recordSchemaOf, recordTy, T_LONG, T_STRING } from '../kernel/avro-types.ts';
import type { Ty } from '../kernel/avro-types.ts';
import { keyOfRecord, splitPaths } from '../kernel/keys.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import type { AvroType } from '../kernel/schema.ts';
import { unknownTable } from './lib/fields.ts';

export interface AbsenceConfig {
  key: string[];
  timeout: number;
  expected?: string;
  wall_clock: boolean;
}

/** What the operator knows of one key. */
interface KeyState {
  /** Latest event time of the key's records; null = never reported (known from the table). */
  last: number | null;
  /** When a never-reported key became known (from the table). */
  since: number | null;
  absent: boolean;
  /** The latest record (null when never reported). */
  record: Record<string, unknown> | null;
}

const TIMESTAMP_MILLIS: Ty = { k: 'long', attrs: { logicalType: 'timestamp-millis' } };

function stateSchema(input: RecordSchema): AvroType {
  return {
    type: 'record',
    name: 'AbsenceKey',
    namespace: 'vigil.state',
    fields: [
      { name: 'last', type: ['null', 'long'] },
      { name: 'since', type: ['null', 'long'] },
      { name: 'absent', type: 'boolean' },
      { name: 'record', type: ['null', input as unknown as AvroType] },
    ],
  };
}

const DESCRIPTION = `
Tracks, per key (the \`key\` fields, e.g. the host), the latest event time of its records. When \`timeout\` passes
without a record of a key, one \`absent\` record goes out; when the key reports again, one \`recovered\` record. A key
reports absent once per silence, however long it lasts.

**Keys that never reported.** With \`expected: <table>\`, every row of that table (e.g. an inventory of hosts) is a key
that must report: a key that never sends anything is absent \`timeout\` after it became known. A row deleted from the
table (a tombstone) stops the tracking of that key. The table must be partitioned like the input (keyed by the same
values, same partition count), so each task watches its own keys.

**Time.** In event time a key is absent when the operator's watermark (driven by the other keys) passes its last
time + \`timeout\`. When every key goes quiet (a network partition, a stopped pipeline) the watermark stops too, so
\`wall_clock\` (default on) also declares a key absent when the wall clock passes the same deadline: the usual choice
for heartbeats. Event time must then track the wall clock (producers' clocks, no replay of old data); turn
\`wall_clock\` off to backtest on recorded data. A key that became known from the table without reporting gets its
deadline from the watermark at that moment (or the wall clock before any record).

**Output.** \`absent\`: \`{key, last_seen, deadline, last}\`: the key (its string form), the time of its latest record
(null if it never reported), the deadline that passed, and its latest record (null if none); timestamp the deadline.
\`recovered\`: \`{key, last_seen, recovered_at, silent_ms, record}\`: the time of the latest record before the silence,
the time of the recovering one, the silence's length, and the record; timestamp the recovering record's (or the
operator's watermark when it is behind it).
`.trim();

export const absenceOperator: OperatorDefinition<AbsenceConfig> = {
  type: 'absence',
  category: 'analysis',
  summary: 'Per key, "no record within T" (absent) and the recovery when records come back; keys listed in a table must report too.',
  description: DESCRIPTION,
  outputs: [
    { name: 'absent', description: 'A key that sent nothing for `timeout`: `{key, last_seen, deadline, last}`.' },
    { name: 'recovered', description: 'An absent key that reported again: `{key, last_seen, recovered_at, silent_ms, record}`.' },
  ],
  config: {
    key: { kind: 'array', min: 1, items: { kind: 'field', description: 'An input field.' }, description: 'Fields whose values identify what must keep reporting (records are partitioned by them).', examples: [['host']] },
    timeout: { kind: 'duration', min: 1, description: 'How long a key may send nothing before it is absent.', examples: ['2m', '30s'] },
    expected: { kind: 'string', optional: true, description: 'A table source whose keys must report even if they never did (an inventory).', examples: ['inventory'] },
    wall_clock: {
      kind: 'boolean',
      default: true,
      description: 'Also declare a key absent when the wall clock passes its deadline (when every key goes quiet the watermark stops). Turn off for backtests on recorded data.',
    },
  },
  examples: [
    {
      title: 'Hosts that stopped sending heartbeats, including inventory hosts that never started',
      yaml: `sources:
  - name: heartbeats
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
  - name: inventory
    topic: cmdb.entities
    schema: vigil.inventory.Entity
    table: true
    key: [entity]
operators:
  - name: silent
    type: absence
    key: [host]
    timeout: 2m
    expected: inventory
sinks:
  - name: down
    from: silent
    topic: hosts.down
  - name: up
    from: silent.recovered
    topic: hosts.up
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const issues: ConfigIssue[] = [];
    if (config.expected !== undefined) {
      const t = ctx.table(config.expected);
      if (t === undefined) issues.push(unknownTable(ctx, config.expected, ['expected']));
      else if (t.keyFields !== undefined && t.keyFields.length !== config.key.length) {
        issues.push({ path: ['expected'], message: `table '${t.name}' is keyed by ${t.keyFields.length} field(s) (${t.keyFields.join(', ')}), but 'key' has ${config.key.length}` });
      }
    }
    if (issues.length > 0) return refused(issues);
    const record = recordTy(input.schema);
    const base = generatedSchemaName(ctx.name);
    const absent = recordSchemaOf(`${base}Absent`, [
      { name: 'key', ty: T_STRING, doc: 'The silent key (one key field: its value; several: their JSON array).' },
      { name: 'last_seen', ty: nullable(TIMESTAMP_MILLIS), doc: 'Time of its latest record; null if it never reported.' },
      { name: 'deadline', ty: TIMESTAMP_MILLIS, doc: 'When a record was due at the latest.' },
      { name: 'last', ty: nullable(record), doc: 'Its latest record; null if it never reported.' },
    ], `Keys silent for longer than the timeout of absence '${ctx.name}'.`);
    const recovered = recordSchemaOf(`${base}Recovered`, [
      { name: 'key', ty: T_STRING, doc: 'The key that reported again.' },
      { name: 'last_seen', ty: nullable(TIMESTAMP_MILLIS), doc: 'Time of its latest record before the silence; null if it never reported before.' },
      { name: 'recovered_at', ty: TIMESTAMP_MILLIS, doc: 'Time of the record that ended the silence.' },
      { name: 'silent_ms', ty: T_LONG, doc: 'Length of the silence (ms).' },
      { name: 'record', ty: record, doc: 'The record that ended the silence.' },
    ], `Keys of absence '${ctx.name}' that reported again.`);
    const settings = { key: splitPaths(config.key), timeout: config.timeout, wall: config.wall_clock };
    return compiled({
      outputs: [
        { name: 'absent', schema: absent },
        { name: 'recovered', schema: recovered },
      ],
      partitionBy: { [DEFAULT_INPUT]: config.key },
      stores: [{ name: 'keys', kind: 'kv', value: stateSchema(input.schema) }],
      ...(config.expected !== undefined ? { tables: [{ table: config.expected, mode: 'partitioned' as const, input: DEFAULT_INPUT, keyFields: config.key, watch: true }] } : {}),
      create: () => new AbsenceInstance(settings),
    });
  },
};

class AbsenceInstance implements OperatorInstance {
  private keys!: KeyValueStore<KeyState>;

  constructor(private readonly s: { key: string[][]; timeout: number; wall: boolean }) {}

  open(ctx: OperatorContext): void {
    this.keys = ctx.kv<KeyState>('keys');
  }

  process(record: StreamRecord, ctx: OperatorContext): void {
    const key = keyOfRecord(record.value, this.s.key);
    if (key === null) {
      ctx.count('null-key');
      ctx.deadLetter('null-key', 'the key fields are null');
      return;
    }
    const t = record.timestamp;
    let st = this.keys.get(key);
    // A gap longer than the timeout is a silence even if its deadline has not fired yet (the record
    // that ends it is what moves event time past the deadline).
    if (st !== undefined && !st.absent && (st.last ?? st.since!) + this.s.timeout < t) {
      st = { ...st, absent: true };
      this.declareAbsent(key, st, ctx);
    }
    if (st?.absent) {
      const wm = ctx.watermark();
      const from = st.last ?? st.since ?? t;
      ctx.count('recovered');
      ctx.emit('recovered', {
        key,
        value: { key, last_seen: st.last, recovered_at: t, silent_ms: Math.max(0, t - from), record: record.value },
        timestamp: t < wm ? wm : t,
        ...(record.headers ? { headers: record.headers } : {}),
      });
    }
    if (st !== undefined && !st.absent && st.last !== null && t <= st.last) return;
    const last = st?.last !== null && st?.last !== undefined && st.last > t ? st.last : t;
    this.keys.put(key, { last, since: null, absent: false, record: last === t ? record.value : st!.record });
    this.watch(key, last + this.s.timeout, ctx);
  }

  onTimer(timer: Timer, ctx: OperatorContext): void {
    const st = this.keys.get(timer.key);
    if (st === undefined || st.absent) return;
    const deadline = (st.last ?? st.since ?? timer.at) + this.s.timeout;
    if (deadline > timer.at) return; // a record came since this timer was set: its own timer is pending
    this.keys.put(timer.key, { ...st, absent: true });
    this.declareAbsent(timer.key, st, ctx);
  }

  private declareAbsent(key: string, st: KeyState, ctx: OperatorContext): void {
    ctx.cancel('event', key);
    ctx.cancel('wall', key);
    const deadline = (st.last ?? st.since!) + this.s.timeout;
    ctx.count('absent');
    ctx.emit('absent', { key, value: { key, last_seen: st.last, deadline, last: st.record }, timestamp: deadline });
  }

  /** A row of the expected table: a key that must report, known from now; a deleted row: no longer watched. */
  onTableUpdate(_table: string, key: string, value: Record<string, unknown> | null, ctx: OperatorContext): void {
    const st = this.keys.get(key);
    if (value === null) {
      if (st === undefined) return;
      this.keys.delete(key);
      ctx.cancel('event', key);
      ctx.cancel('wall', key);
      return;
    }
    if (st !== undefined) return;
    const wm = ctx.watermark();
    const since = Number.isFinite(wm) ? wm : ctx.now();
    this.keys.put(key, { last: null, since, absent: false, record: null });
    this.watch(key, since + this.s.timeout, ctx);
  }

  private watch(key: string, deadline: number, ctx: OperatorContext): void {
    ctx.schedule({ kind: 'event', at: deadline, key });
    if (this.s.wall) ctx.schedule({ kind: 'wall', at: deadline, key });
  }
}
