// sequence: "A then B within T" per key (a deploy followed by an error spike) and "A without B
// within T" (a request without its response, an alert nobody acknowledged), in event time, with an
// opt-in wall-clock timeout. Pending A's live in a changelogged buffer store (and their wall-clock
// timers with the task's timers), so they survive restarts and rebalances.
import type { BufferStore, ConfigIssue, OperatorContext, OperatorDefinition, OperatorInstance, StreamRecord, Timer } from '../kernel/operator.ts';
import { compiled, refused } from '../kernel/operator.ts';
import { compileExpression } from '../kernel/expr.ts';
import { recordSchemaOf, recordTy, T_LONG } from '../kernel/avro-types.ts';
import type { Ty } from '../kernel/avro-types.ts';
import { keyOfRecord, splitPaths } from '../kernel/keys.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { computedFields, evaluateFields, heldRecordSchema, isLate } from './lib/fields.ts';
import type { ComputedField, HeldRecord } from './lib/fields.ts';

export interface SequenceConfig {
  first_key: string[];
  then_key: string[];
  first_where?: string;
  then_where?: string;
  within: number;
  grace: number;
  wall_clock_timeout: boolean;
  fields?: Record<string, string>;
}

type Pending = HeldRecord;

const TIMESTAMP_MILLIS: Ty = { k: 'long', attrs: { logicalType: 'timestamp-millis' } };

const DESCRIPTION = `
Watches two kinds of record per key: a \`first\` record (A) and a \`then\` record (B). When a B arrives within
\`within\` after an A of the same key (A's time <= B's time <= A's time + within), the pair goes to \`matched\`; an
A that no B followed within \`within\` goes to \`expired\` once that can no longer change. The inputs may be two
streams or one stream twice (\`from: [events, events]\`) told apart by \`first_where\` and \`then_where\`; records
that fail their input's condition are ignored. The key of each side is made of its \`first_key\` / \`then_key\` fields
(the planner partitions both inputs by them).

**Matching.** A B matches every pending A of its key within its reach, oldest first, each once: an A is done once
matched. An A that arrives after B's already in its reach (out of order) matches the earliest of them. A B is not
used up: one error spike matches each deploy before it.

**Time.** A record is late when the watermark has passed its time plus \`grace\`: it is dead-lettered with reason
\`late\`. An A expires when the watermark passes its time + within + grace; the \`expired\` record has the deadline
(A's time + within) as its timestamp. In event time an A of a stream that goes quiet never expires (no later record
moves the watermark): \`wall_clock_timeout: true\` also expires it when the wall clock passes the same deadline, so a
request whose response never comes is reported even if traffic stops; the trade-off is that event time must track the
wall clock (a B delayed past the deadline in wall-clock time finds its A expired). Pending A's and their timers
survive restarts. A record whose key fields are null is dead-lettered (\`null-key\`). The operator passes on its input
watermark minus \`grace\`.

**Output.** \`matched\`: \`{first, then, delay_ms}\` (delay_ms = B's time - A's time), or with \`fields\` the fields
computed by expressions over \`first\` and \`then\`; timestamp B's, key the sequence key. \`expired\`:
\`{first, deadline}\`; timestamp the deadline.
`.trim();

export const sequenceOperator: OperatorDefinition<SequenceConfig> = {
  type: 'sequence',
  category: 'analysis',
  summary: 'Per key, "A then B within T" (matched) and "A without B within T" (expired), in event time with an opt-in wall-clock timeout.',
  description: DESCRIPTION,
  inputs: [
    { name: 'first', description: 'The records that open a sequence (A).' },
    { name: 'then', description: 'The records that complete it (B).' },
  ],
  outputs: [
    { name: 'matched', description: 'An A followed by a B within `within`: `{first, then, delay_ms}` (or `fields`).' },
    { name: 'expired', description: 'An A that no B followed within `within`: `{first, deadline}`.' },
  ],
  config: {
    first_key: { kind: 'array', min: 1, items: { kind: 'field', input: 'first', description: 'A field of the first input.' }, description: 'Fields of the A records that form the key.', examples: [['entity']] },
    then_key: { kind: 'array', min: 1, items: { kind: 'field', input: 'then', description: 'A field of the then input.' }, description: 'Fields of the B records that form the key, in the same order.', examples: [['host']] },
    first_where: { kind: 'expression', optional: true, returns: 'boolean', input: 'first', description: 'Which records of the first input are A records (default: all).', examples: ['type == "deploy.finished"'] },
    then_where: { kind: 'expression', optional: true, returns: 'boolean', input: 'then', description: 'Which records of the then input are B records (default: all).', examples: ['value > 0.05'] },
    within: { kind: 'duration', min: 1, description: 'How long after an A a B may come.', examples: ['10m', '5s'] },
    grace: { kind: 'duration', default: 0, description: 'Extra lateness allowed past the watermark.', examples: ['5s'] },
    wall_clock_timeout: {
      kind: 'boolean',
      default: false,
      description: 'Also expire an A when the wall clock passes its time + within + grace (reports it when the stream goes quiet; B delayed that long in wall-clock time then find it expired).',
    },
    fields: {
      kind: 'map',
      optional: true,
      items: { kind: 'string', freeText: true, description: 'An expression over `first` and `then`.' },
      description: 'The matched output\'s fields: output field name -> expression over `first` and `then`. Default: `{first, then, delay_ms}`.',
      examples: [{ service: 'first.entity', version: 'first.attributes["version"] ?? ""', error_rate: 'then.value' }],
    },
  },
  examples: [
    {
      title: 'A deploy followed by an error-rate spike within 10 minutes',
      yaml: `sources:
  - name: deploys
    topic: events.deploys
    schema: vigil.telemetry.Event
    key: [entity]
    timestamp: timestamp
  - name: errors
    topic: metrics.http-errors
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: bad-deploy
    type: sequence
    from: { first: deploys, then: errors }
    first_key: [entity]
    then_key: [host]
    first_where: type == "deploy.finished"
    then_where: value > 0.05
    within: 10m
    fields:
      service: first.entity
      version: first.attributes["version"] ?? "?"
      error_rate: then.value
`,
    },
    {
      title: 'A request without its response within 5 seconds, also when traffic stops',
      yaml: `sources:
  - name: http
    topic: events.http
    schema: vigil.telemetry.Event
    timestamp: timestamp
operators:
  - name: no-response
    type: sequence
    from: [http, http]
    first_key: [attributes.request_id]
    then_key: [attributes.request_id]
    first_where: type == "request"
    then_where: type == "response"
    within: 5s
    wall_clock_timeout: true
sinks:
  - name: timeouts
    from: no-response.expired
    topic: http.timeouts
`,
    },
  ],
  compile(config, ctx) {
    const [first, then] = ctx.inputs as [(typeof ctx.inputs)[number], (typeof ctx.inputs)[number]];
    const issues: ConfigIssue[] = [];
    if (config.first_key.length !== config.then_key.length)
      issues.push({ path: ['then_key'], message: `'first_key' has ${config.first_key.length} field(s) and 'then_key' ${config.then_key.length}: a key is made of the same number of fields on both sides` });
    const pair = recordSchemaOf('vigil.sequence.Pair', [
      { name: 'first', ty: recordTy(first.schema) },
      { name: 'then', ty: recordTy(then.schema) },
    ]);
    const projected = computedFields(config.fields ?? {}, pair, issues);
    if (issues.length > 0) return refused(issues);
    const base = generatedSchemaName(ctx.name);
    const matched =
      config.fields === undefined
        ? recordSchemaOf(`${base}Matched`, [
            { name: 'first', ty: recordTy(first.schema), doc: 'The A record.' },
            { name: 'then', ty: recordTy(then.schema), doc: 'The B record that followed it.' },
            { name: 'delay_ms', ty: T_LONG, doc: "B's time - A's time (ms)." },
          ], `A then B, found by sequence '${ctx.name}'.`)
        : recordSchemaOf(`${base}Matched`, projected, `A then B, found by sequence '${ctx.name}'.`);
    const expired = recordSchemaOf(`${base}Expired`, [
      { name: 'first', ty: recordTy(first.schema), doc: 'The A record no B followed.' },
      { name: 'deadline', ty: TIMESTAMP_MILLIS, doc: "A's time + within: when the B was due." },
    ], `A without B, found by sequence '${ctx.name}'.`);
    const settings: Settings = {
      within: config.within,
      grace: config.grace,
      wall: config.wall_clock_timeout,
      firstKey: splitPaths(config.first_key),
      thenKey: splitPaths(config.then_key),
      firstWhere: config.first_where === undefined ? undefined : compileExpression(config.first_where, first.schema).evaluate,
      thenWhere: config.then_where === undefined ? undefined : compileExpression(config.then_where, then.schema).evaluate,
      project: config.fields === undefined ? undefined : projected,
    };
    return compiled({
      outputs: [
        { name: 'matched', schema: matched },
        { name: 'expired', schema: expired },
      ],
      partitionBy: { first: config.first_key, then: config.then_key },
      stores: [
        { name: 'first', kind: 'buffer', value: heldRecordSchema('SequenceFirst', first.schema), retentionMs: config.within + config.grace + 1 },
        { name: 'then', kind: 'buffer', value: heldRecordSchema('SequenceThen', then.schema), retentionMs: config.grace + 1 },
      ],
      create: () => new SequenceInstance(settings),
    });
  },
};

interface Settings {
  within: number;
  grace: number;
  wall: boolean;
  firstKey: string[][];
  thenKey: string[][];
  firstWhere: ((v: Record<string, unknown>) => unknown) | undefined;
  thenWhere: ((v: Record<string, unknown>) => unknown) | undefined;
  project: readonly ComputedField[] | undefined;
}

const SEP = '\u0000';

class SequenceInstance implements OperatorInstance {
  private firsts!: BufferStore<Pending>;
  private thens!: BufferStore<Pending>;

  constructor(private readonly s: Settings) {}

  open(ctx: OperatorContext): void {
    this.firsts = ctx.buffer<Pending>('first');
    this.thens = ctx.buffer<Pending>('then');
  }

  process(record: StreamRecord, ctx: OperatorContext, input: string): void {
    const s = this.s;
    const isFirst = input === 'first';
    const where = isFirst ? s.firstWhere : s.thenWhere;
    if (where !== undefined && where(record.value) !== true) return;
    const t = record.timestamp;
    if (isLate(ctx, `${isFirst ? 'first' : 'then'} record`, t, s.grace)) return;
    const key = keyOfRecord(record.value, isFirst ? s.firstKey : s.thenKey);
    if (key === null) {
      ctx.count('null-key');
      ctx.deadLetter('null-key', `the ${isFirst ? 'first' : 'then'} record's key fields are null`);
      return;
    }
    const held: Pending = { key: record.key, value: record.value, headers: record.headers ?? null };
    if (isFirst) {
      // B's already here (out of order) within reach: the earliest completes this A.
      const b = this.thens.fetch(key, t, t + s.within)[0];
      if (b !== undefined) {
        this.matched(key, held, t, b.value, b.time, ctx);
        return;
      }
      const e = this.firsts.add(key, t, held);
      if (s.wall) ctx.schedule({ kind: 'wall', at: t + s.within + s.grace, key: `${t}${SEP}${e.seq}${SEP}${key}` });
      return;
    }
    for (const a of this.firsts.fetch(key, t - s.within, t)) {
      this.firsts.remove(a);
      if (s.wall) ctx.cancel('wall', `${a.time}${SEP}${a.seq}${SEP}${key}`);
      this.matched(key, a.value, a.time, held, t, ctx);
    }
    this.thens.add(key, t, held);
  }

  /** A's whose deadline (plus grace) the watermark passed expire; B's that no A can still reach go. */
  onWatermark(watermark: number, ctx: OperatorContext): number {
    const s = this.s;
    for (const a of this.firsts.takeUntil(watermark - s.within - s.grace - 1)) {
      if (s.wall) ctx.cancel('wall', `${a.time}${SEP}${a.seq}${SEP}${a.key}`);
      this.expired(a.key, a.value, a.time, ctx);
    }
    this.thens.takeUntil(watermark - s.grace - 1);
    return watermark - s.grace;
  }

  /** The wall-clock deadline of a pending A. */
  onTimer(timer: Timer, ctx: OperatorContext): void {
    const [time, seq, ...rest] = timer.key.split(SEP);
    const key = rest.join(SEP);
    const a = this.firsts.fetch(key, Number(time), Number(time)).find((e) => e.seq === Number(seq));
    if (a === undefined) return;
    this.firsts.remove(a);
    ctx.count('wall-clock-expired');
    this.expired(key, a.value, a.time, ctx);
  }

  private matched(key: string, a: Pending, ta: number, b: Pending, tb: number, ctx: OperatorContext): void {
    ctx.count('matched');
    let value: Record<string, unknown>;
    const project = this.s.project;
    if (project === undefined) value = { first: a.value, then: b.value, delay_ms: tb - ta };
    else value = evaluateFields(project, { first: a.value, then: b.value });
    const headers = b.headers ?? a.headers ?? undefined;
    ctx.emit('matched', { key, value, timestamp: Math.max(ta, tb), ...(headers ? { headers } : {}) });
  }

  private expired(key: string, a: Pending, ta: number, ctx: OperatorContext): void {
    ctx.count('expired');
    const deadline = ta + this.s.within;
    ctx.emit('expired', { key, value: { first: a.value, deadline }, timestamp: deadline, ...(a.headers ? { headers: a.headers } : {}) });
  }
}
