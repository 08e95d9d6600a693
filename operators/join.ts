// join: windowed stream-stream join (inner, left, outer) of two inputs on a key, with Kafka
// Streams' semantics: a pair is emitted when its second record arrives; a record without a partner
// is emitted (left and outer joins) only once no partner can arrive any more, never spuriously.
import type { BufferStore, ConfigIssue, OperatorContext, OperatorDefinition, OperatorInstance, RecordSchema, StreamRecord } from '../kernel/operator.ts';
import { compiled, refused } from '../kernel/operator.ts';
import { describeTy, isStringLike, nonNull, nullable, recordSchemaOf, recordTy, stripConsts } from '../kernel/avro-types.ts';
import type { Ty } from '../kernel/avro-types.ts';
import { keyOfRecord, splitPaths } from '../kernel/keys.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { checkFieldPath } from '../kernel/spec.ts';
import type { AvroField } from '../kernel/schema.ts';
import { computedFields, evaluateFields, heldRecordSchema, isLate } from './lib/fields.ts';
import type { ComputedField, HeldRecord } from './lib/fields.ts';

export interface JoinConfig {
  kind: 'inner' | 'left' | 'outer';
  left_key: string[];
  right_key: string[];
  within?: number;
  before?: number;
  after?: number;
  grace: number;
  fields?: Record<string, string>;
}

type Side = 'left' | 'right';

/** A buffered record of one side (key: the join key, or the record's own when its key fields are null), and whether it found a partner. */
interface Held extends HeldRecord {
  matched: boolean;
}

/** The join's view of both records: `left` and `right`, each null where a side is missing. */
function pairTy(left: RecordSchema, right: RecordSchema, kind: JoinConfig['kind']): { schema: RecordSchema; left: Ty; right: Ty } {
  const l = recordTy(left) as Ty;
  const r = recordTy(right) as Ty;
  const lt = kind === 'outer' ? nullable(l) : l;
  const rt = kind === 'inner' ? r : nullable(r);
  return { schema: recordSchemaOf('vigil.join.Pair', [{ name: 'left', ty: lt }, { name: 'right', ty: rt }]), left: lt, right: rt };
}

const DESCRIPTION = `
Joins the records of two inputs that have the same key and are close in event time: a \`left\` record at time t
joins every \`right\` record of its key with a time in \`[t - before, t + after]\` (\`within\` sets both). The key of a
side is made of its \`left_key\` / \`right_key\` fields (several: their JSON array); both inputs are partitioned by
their key (the planner repartitions an input keyed otherwise; two inputs read directly must have equal partition
counts).

**Kinds** (Kafka Streams' semantics). \`inner\`: one result per pair, emitted when the second record of the pair
arrives. \`left\`: also each left record that found no right record, once the window it could have found one in
has closed. \`outer\`: also each such right record. An unmatched record is emitted only when no partner can arrive
on time any more (its time plus \`after\` (left) or \`before\` (right) plus \`grace\` is behind the watermark), so a
left join never emits a record alone and then with its partner.

**Time.** A record is late when the watermark has passed its time plus \`grace\` (the watermark already lags by the
sources' max_out_of_order): it joins nothing, is counted (\`late\`) and dead-lettered with reason \`late\`. A record
whose key fields are null cannot join: in a left (or outer) join it is emitted at once without a partner, otherwise
it is dead-lettered (\`null-key\`). Records are held in changelogged buffer stores for \`after + grace\` (left) and
\`before + grace\` (right) past their time. The join passes on its input watermark minus \`grace\` and the wider of
\`before\` and \`after\`: everything it can still emit is at least that recent.

**Output.** By default a record \`{left, right}\` of both input records (\`right\` nullable in a left join, both in
an outer join); with \`fields\`, the fields computed by expressions over \`left\` and \`right\` (e.g.
\`host: left.entity\`, \`errors: right.value\`; a side that may be missing must be given a default:
\`left.entity ?? right.service\`). The timestamp is the later of the two records' (an unmatched record keeps its
own), the key is the join key, the headers are those of the record that arrived second.

The output \`unmatched\` gets every record that found no partner by the time its window closed, whatever the kind:
\`{side, left, right}\` with \`side\` "left" or "right" (data quality: orphans of an inner join).
`.trim();

export const joinOperator: OperatorDefinition<JoinConfig> = {
  type: 'join',
  category: 'analysis',
  summary: 'Windowed stream-stream join of two inputs on a key (inner, left or outer), with Kafka Streams\' semantics.',
  description: DESCRIPTION,
  inputs: [
    { name: 'left', description: 'The left stream.' },
    { name: 'right', description: 'The right stream.' },
  ],
  outputs: [
    { name: 'out', description: 'The join results of the chosen kind.' },
    { name: 'unmatched', description: 'Every record that found no partner before its window closed: `{side, left, right}`.' },
  ],
  config: {
    kind: { kind: 'enum', values: ['inner', 'left', 'outer'], default: 'inner', description: 'inner: pairs only; left: also left records without a partner; outer: also right ones.' },
    left_key: { kind: 'array', min: 1, items: { kind: 'field', input: 'left', description: 'A field of the left input.' }, description: 'Fields of the left records that form the join key.', examples: [['host']] },
    right_key: {
      kind: 'array',
      min: 1,
      items: { kind: 'field', input: 'right', description: 'A field of the right input.' },
      description: 'Fields of the right records that form the join key, in the same order.',
      examples: [['hostname']],
    },
    within: { kind: 'duration', optional: true, description: 'Join right records up to this long before or after a left record (sets before and after).', examples: ['5m'] },
    before: { kind: 'duration', optional: true, description: 'How long before a left record a right record may be (default: within).', examples: ['1m'] },
    after: { kind: 'duration', optional: true, description: 'How long after a left record a right record may be (default: within).', examples: ['10m'] },
    grace: { kind: 'duration', default: 0, description: 'Extra lateness allowed past the watermark before a record is late and a window closes.', examples: ['30s'] },
    fields: {
      kind: 'map',
      optional: true,
      items: { kind: 'string', freeText: true, description: 'An expression over `left` and `right`.' },
      description: 'Output field name -> expression over `left` and `right` (the two records). Default: the output is `{left, right}`.',
      examples: [{ host: 'left.host', deploy: 'left.attributes["version"] ?? ""', errors: 'right.value' }],
    },
  },
  examples: [
    {
      title: 'Error rate samples within 10 minutes after a deploy of the same service',
      yaml: `sources:
  - name: deploys
    topic: events.deploys
    schema: vigil.telemetry.Event
    key: [entity]
    timestamp: timestamp
  - name: errors
    topic: metrics.errors
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: deploy-errors
    type: join
    from: { left: deploys, right: errors }
    left_key: [entity]
    right_key: [host]
    before: 0s
    after: 10m
    fields:
      service: left.entity
      version: left.attributes["version"] ?? "?"
      deployed_at: left.timestamp
      error_rate: right.value
`,
    },
    {
      title: 'Requests with their response, if any, within 5 seconds (left join)',
      yaml: `sources:
  - name: requests
    topic: http.requests
    schema: vigil.telemetry.Event
    timestamp: timestamp
  - name: responses
    topic: http.responses
    schema: vigil.telemetry.Event
    timestamp: timestamp
operators:
  - name: request-response
    type: join
    kind: left
    from: [requests, responses]
    left_key: [attributes.request_id]
    right_key: [attributes.request_id]
    before: 0s
    after: 5s
`,
    },
  ],
  compile(config, ctx) {
    const [left, right] = ctx.inputs as [(typeof ctx.inputs)[number], (typeof ctx.inputs)[number]];
    const issues: ConfigIssue[] = [];
    const before = config.before ?? config.within;
    const after = config.after ?? config.within;
    if (before === undefined || after === undefined) issues.push({ path: [], code: 'MISSING_FIELD', message: "join needs 'within' (or both 'before' and 'after')" });
    if (config.left_key.length !== config.right_key.length)
      issues.push({ path: ['right_key'], message: `'left_key' has ${config.left_key.length} field(s) and 'right_key' ${config.right_key.length}: a key is made of the same number of fields on both sides` });
    config.left_key.forEach((f, i) => {
      const r = config.right_key[i];
      if (r === undefined || checkFieldPath(f, left.schema) !== undefined || checkFieldPath(r, right.schema) !== undefined) return;
      const lt = fieldTy(left.schema, f);
      const rt = fieldTy(right.schema, r);
      if (lt && rt && !(isStringLike(nonNull(lt)) && isStringLike(nonNull(rt))) && nonNull(lt).k !== nonNull(rt).k)
        issues.push({ path: ['right_key', i], message: `key field '${r}' is ${describeTy(rt)} but '${f}' of the left is ${describeTy(lt)}: keys of both sides must compare equal as strings` });
    });
    const pair = pairTy(left.schema, right.schema, config.kind);
    const outFields = computedFields(config.fields ?? {}, pair.schema, issues);
    if (issues.length > 0) return refused(issues);
    const out =
      config.fields === undefined
        ? recordSchemaOf(generatedSchemaName(ctx.name), [
            { name: 'left', ty: pair.left, doc: 'The left record.' },
            { name: 'right', ty: pair.right, doc: 'The right record.' },
          ], `Output of join '${ctx.name}'.`)
        : recordSchemaOf(generatedSchemaName(ctx.name), outFields, `Output of join '${ctx.name}'.`);
    const side: Ty = { k: 'string', consts: ['left', 'right'] };
    const unmatched = recordSchemaOf(`${generatedSchemaName(ctx.name)}Unmatched`, [
      { name: 'side', ty: stripConsts(side), doc: 'Which input the record came from: left or right.' },
      { name: 'left', ty: nullable(recordTy(left.schema)), doc: 'The left record (null for a right one).' },
      { name: 'right', ty: nullable(recordTy(right.schema)), doc: 'The right record (null for a left one).' },
    ], `Records of join '${ctx.name}' that found no partner.`);
    const settings: Settings = {
      kind: config.kind,
      before: before!,
      after: after!,
      grace: config.grace,
      leftKey: splitPaths(config.left_key),
      rightKey: splitPaths(config.right_key),
      project: config.fields === undefined ? undefined : outFields,
    };
    return compiled({
      outputs: [
        { name: 'out', schema: out },
        { name: 'unmatched', schema: unmatched },
      ],
      partitionBy: { left: config.left_key, right: config.right_key },
      stores: [
        { name: 'left', kind: 'buffer', value: heldRecordSchema('JoinLeft', left.schema, MATCHED), retentionMs: after! + config.grace + 1 },
        { name: 'right', kind: 'buffer', value: heldRecordSchema('JoinRight', right.schema, MATCHED), retentionMs: before! + config.grace + 1 },
      ],
      create: () => new JoinInstance(settings),
    });
  },
};

function fieldTy(schema: RecordSchema, path: string): Ty | undefined {
  let t: Ty = recordTy(schema);
  for (const part of path.split('.')) {
    const b = nonNull(t);
    if (b.k === 'record') {
      const f = b.byName.get(part);
      if (f === undefined) return undefined;
      t = f.ty;
    } else if (b.k === 'map') t = nullable(b.values);
    else return undefined;
  }
  return t;
}

interface Settings {
  kind: JoinConfig['kind'];
  before: number;
  after: number;
  grace: number;
  leftKey: string[][];
  rightKey: string[][];
  project: readonly ComputedField[] | undefined;
}

/** The extra field of a held join record. */
const MATCHED: AvroField[] = [{ name: 'matched', type: 'boolean' }];

class JoinInstance implements OperatorInstance {
  private left!: BufferStore<Held>;
  private right!: BufferStore<Held>;
  private readonly pairView: Record<string, unknown> = { left: null, right: null };

  constructor(private readonly s: Settings) {}

  open(ctx: OperatorContext): void {
    this.left = ctx.buffer<Held>('left');
    this.right = ctx.buffer<Held>('right');
  }

  process(record: StreamRecord, ctx: OperatorContext, input: string): void {
    const side = input as Side;
    const s = this.s;
    const key = keyOfRecord(record.value, side === 'left' ? s.leftKey : s.rightKey);
    const t = record.timestamp;
    if (isLate(ctx, `${side} record`, t, s.grace)) return;
    const held: Held = { key: key ?? record.key, value: record.value, headers: record.headers ?? null, matched: false };
    if (key === null) {
      ctx.count('null-key');
      if ((side === 'left' && s.kind !== 'inner') || (side === 'right' && s.kind === 'outer')) this.unmatched(side, held, t, ctx, true);
      else ctx.deadLetter('null-key', `the ${side} record's key fields are null: it cannot join`);
      return;
    }
    // Partners: right records in [t - before, t + after] of a left one; left ones in [t - after, t + before] of a right one.
    const other = side === 'left' ? this.right : this.left;
    const partners = side === 'left' ? other.fetch(key, t - s.before, t + s.after) : other.fetch(key, t - s.after, t + s.before);
    for (const p of partners) {
      held.matched = true;
      if (!p.value.matched) other.update(p, { ...p.value, matched: true });
      const [l, r] = side === 'left' ? [held, p.value] : [p.value, held];
      this.emit(key, l.value, r.value, Math.max(t, p.time), record.headers, ctx);
    }
    (side === 'left' ? this.left : this.right).add(key, t, held);
  }

  /** Records whose window closed: gone from the buffers, and out as unmatched if they found no partner. */
  onWatermark(watermark: number, ctx: OperatorContext): number {
    const s = this.s;
    for (const e of this.left.takeUntil(watermark - s.after - s.grace - 1)) if (!e.value.matched) this.unmatched('left', e.value, e.time, ctx, s.kind !== 'inner');
    for (const e of this.right.takeUntil(watermark - s.before - s.grace - 1)) if (!e.value.matched) this.unmatched('right', e.value, e.time, ctx, s.kind === 'outer');
    return watermark - s.grace - Math.max(s.before, s.after);
  }

  private unmatched(side: Side, held: Held, t: number, ctx: OperatorContext, alsoOut: boolean): void {
    ctx.count(`unmatched-${side}`);
    const l = side === 'left' ? held.value : null;
    const r = side === 'right' ? held.value : null;
    const headers = held.headers ?? undefined;
    ctx.emit('unmatched', { key: held.key, value: { side, left: l, right: r }, timestamp: t, ...(headers ? { headers } : {}) });
    if (alsoOut) this.emit(held.key, l, r, t, headers, ctx);
  }

  private emit(key: string | null, l: Record<string, unknown> | null, r: Record<string, unknown> | null, t: number, headers: Record<string, string> | undefined, ctx: OperatorContext): void {
    let value: Record<string, unknown>;
    const project = this.s.project;
    if (project === undefined) value = { left: l, right: r };
    else {
      const view = this.pairView;
      view.left = l;
      view.right = r;
      value = evaluateFields(project, view);
    }
    ctx.emit('out', { key, value, timestamp: t, ...(headers ? { headers } : {}) });
  }
}
