// predict: trend prediction per series over a sliding window (a number of points or a time span):
// a line (Prometheus' predict_linear, updated in O(1) per record from running sums), a polynomial, a
// robust line (Theil-Sen) or an exponential, fitted with ml-regression. Each record goes on with the
// value predicted `horizon` ahead, the slope, the fit's error and, given a threshold, when the fit
// crosses it ("disk full in 3 h 10 min"); records crossing within `within` also go to `breaches`.
import { ExponentialRegression, PolynomialRegression, TheilSenRegression } from 'ml-regression';
import type { ConfigIssue, KeyValueStore, OperatorContext, OperatorDefinition, OperatorInstance, StreamRecord } from '../kernel/operator.ts';
import { DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import { compileExpression } from '../kernel/expr.ts';
import { T_DOUBLE, T_INT, T_LONG, T_STRING, extendRecord, nullable, recordTy } from '../kernel/avro-types.ts';
import type { Ty } from '../kernel/avro-types.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { SERIES_KEY_SPEC, seriesKeying } from './lib/series.ts';
import { recordExtender } from '../kernel/record.ts';
import type { RecordExtender } from '../kernel/record.ts';
import type { AvroType } from '../kernel/schema.ts';
import { formatDuration } from '../kernel/spec.ts';
import { addPoint, emptySums, lineOf, removePoint, resetSums } from './lib/regression.ts';
import type { WindowSums } from './lib/regression.ts';

export type Fit = 'linear' | 'polynomial' | 'robust' | 'exponential';

export interface PredictConfig {
  value: string;
  key?: string[];
  fit: Fit;
  degree?: number;
  window?: number;
  points?: number;
  max_points: number;
  min_points: number;
  horizon: number;
  threshold?: number;
  direction: 'up' | 'down' | 'either';
  within?: number;
  lookahead: number;
}

/**
 * One series: where its window's points are, the running sums of the line, the run of equal values.
 * The points are kept in chunks of CHUNK (a store entry each: `<series>\u0000<chunk number>`), so a
 * record changes the series' entry and its newest chunk, and what a commit writes to the changelog
 * does not grow with the window.
 */
interface SeriesState {
  /** The chunk holding the oldest point, the oldest point's index in it, and the newest chunk. */
  headChunk: number;
  headIndex: number;
  tailChunk: number;
  count: number;
  /** Newest time seen (the evaluation time). */
  newest: number;
  /** Consecutive newest values equal to the newest one (the window is constant when it covers them all). */
  run: number;
  /** The newest value. */
  last: number;
  sums: WindowSums;
  /** Whether the series' latest record went to `breaches`. */
  breaching: boolean;
}

interface Chunk {
  t: number[];
  y: number[];
}

const CHUNK = 64;

/** A fitted model, x in seconds relative to the evaluation time. */
interface Model {
  at(x: number): number;
  slope(x: number): number;
  rmse: number;
}

const OUTPUT_FIELDS = ['predicted', 'slope', 'fit_error', 'points', 'crosses_at', 'eta_ms', 'eta'] as const;
const TIMESTAMP_MILLIS: Ty = { k: 'long', attrs: { logicalType: 'timestamp-millis' } };

/** "3 h 10 min", "45 min", "2 d 4 h", "30 s": the two largest units. */
export function formatEta(ms: number): string {
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]];
  if (ms <= 0) return 'now';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000) * 1000;
  for (const [name, size] of units) {
    if (rest >= size || parts.length > 0) {
      const q = Math.floor(rest / size);
      rest -= q * size;
      if (q > 0) parts.push(`${q} ${name}`);
      if (parts.length === 2 || (parts.length === 1 && q === 0)) break;
    }
  }
  return parts.join(' ');
}

const DESCRIPTION = `
Fits a trend to each series' recent values (the records with the same \`key\` values) and sends each record on with
what the trend says: \`predicted\` (the value \`horizon\` after the record), \`slope\` (per second, at the record's
time), \`fit_error\` (root mean square of the fit's residuals over the window), \`points\` (how many it used), and,
given a \`threshold\`, when the trend crosses it: \`crosses_at\` (a time), \`eta_ms\` and \`eta\` ("3 h 10 min"). The
fields are null until the window holds \`min_points\`, and the crossing fields when the trend does not cross within
\`lookahead\`. With \`within\`, records whose crossing is that close also go to the \`breaches\` output, and \`changes\` has the records at which
a series starts or stops breaching (to raise a warning once and resolve it).

**Window.** \`points: N\` keeps the last N values; \`window: 1h\` the values of the last hour of event time (as a
Prometheus range \`[1h]\`: times after the newest one minus 1h; at most \`max_points\` of them). The evaluation time is
the newest event time of the series, and x is in seconds relative to it, as in Prometheus.

**Fits.** \`linear\` is least squares, the same numbers as Prometheus' \`predict_linear(v[window], horizon)\` (a
window of equal values has slope 0); it keeps running sums, so each record costs the same whatever the window's size.
\`polynomial\` (of \`degree\`, default 2), \`robust\` (Theil-Sen: the median of pairwise slopes, unmoved by outliers;
its cost grows with the square of the window, so keep it to a few hundred points) and \`exponential\` (y = b e^(a x);
values must be positive) are fitted afresh on every record with ml-regression.

**Crossing.** With \`direction: either\` (the default), the trend's value at the record's time decides the direction:
below the threshold it is crossed going up, above it going down, and a trend already past it has no crossing ahead.
With \`direction: up\` (a disk filling up) only rising through the threshold counts, and a trend already at or above
it has crossed: \`crosses_at\` is the record's time and \`eta_ms\` 0, so a breach lasts as long as the series stays
beyond the threshold (Prometheus' \`predict_linear(...) > threshold\`); \`down\` is the same the other way. A line
(linear, robust) is solved; a polynomial or an exponential is searched over \`lookahead\` (512 steps, then bisection).
`.trim();

export const predictOperator: OperatorDefinition<PredictConfig> = {
  type: 'predict',
  category: 'analysis',
  summary: 'Trend prediction per series over a sliding window (linear as Prometheus predict_linear, polynomial, robust, exponential): the value ahead, the slope, the fit error, and when a threshold is crossed.',
  description: DESCRIPTION,
  outputs: [
    { name: DEFAULT_OUTPUT, description: 'Every record, with `predicted`, `slope`, `fit_error`, `points`, `crosses_at`, `eta_ms`, `eta` added.' },
    { name: 'breaches', description: 'The records whose trend crosses the threshold within `within` (the same fields).' },
    { name: 'changes', description: 'With `within`: the first record of each run of breaches, and the first one after it (a breach starts, a breach is over: `eta_ms` null or beyond `within`).' },
  ],
  config: {
    value: { kind: 'expression', returns: 'number', description: 'The value to follow, an expression over the record.', examples: ['value', 'used_bytes / total_bytes * 100'] },
    key: SERIES_KEY_SPEC,
    fit: { kind: 'enum', values: ['linear', 'polynomial', 'robust', 'exponential'], default: 'linear', description: 'The trend fitted to the window (see above).' },
    degree: { kind: 'integer', optional: true, min: 1, max: 6, description: 'polynomial: its degree (default 2).', examples: [3] },
    window: { kind: 'duration', optional: true, min: 1, description: 'A time window: the values of this much event time (give this or `points`).', examples: ['1h', '30m'] },
    points: { kind: 'integer', optional: true, min: 2, max: 100_000, description: 'A count window: the last this many values (give this or `window`).', examples: [60] },
    max_points: { kind: 'integer', default: 1000, min: 2, max: 100_000, description: 'A time window keeps at most this many values (the oldest go first).' },
    min_points: { kind: 'integer', default: 3, min: 2, description: 'Values the window needs before it predicts.' },
    horizon: { kind: 'duration', default: '1h', description: 'How far after each record `predicted` is.', examples: ['4h'] },
    threshold: { kind: 'number', optional: true, description: 'A level whose crossing is predicted (a disk\'s size, 100 %, 0 bytes free).', examples: [90] },
    direction: {
      kind: 'enum',
      values: ['either', 'up', 'down'],
      default: 'either',
      description: 'Which crossings of the threshold count: up (rising through it; at or above it already: crossed now), down, or either (the next crossing ahead, whichever way).',
    },
    within: { kind: 'duration', optional: true, min: 1, description: 'With threshold: records whose crossing is at most this far ahead go to `breaches`.', examples: ['6h'] },
    lookahead: { kind: 'duration', default: '7d', min: 1, description: 'How far ahead a crossing is looked for.' },
  },
  examples: [
    {
      title: 'Disks that will be full within six hours, by the last two hours of samples',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: disk
    type: filter
    where: name == "disk.used_percent"
  - name: disk-forecast
    type: predict
    value: value
    key: [host]
    window: 2h
    horizon: 1h
    threshold: 100
    within: 6h
sinks:
  - name: forecasts
    from: disk-forecast
    topic: metrics.disk.forecast
  - name: filling
    from: disk-forecast.breaches
    topic: alerts.disk.filling
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const issues: ConfigIssue[] = [];
    const inTy = recordTy(input.schema);
    for (const f of OUTPUT_FIELDS) if (inTy.byName.has(f)) issues.push({ path: ['value'], message: `the input already has a field '${f}', which predict adds: rename it first (a map operator)` });
    if ((config.window === undefined) === (config.points === undefined)) issues.push({ path: [config.window === undefined ? 'points' : 'window'], at: 'key', code: 'MISSING_FIELD', message: "give either 'points' (a count window) or 'window' (a time window), not both" });
    if (config.degree !== undefined && config.fit !== 'polynomial') issues.push({ path: ['degree'], message: `'degree' applies to fit: polynomial, not ${config.fit}` });
    if (config.within !== undefined && config.threshold === undefined) issues.push({ path: ['within'], message: "'within' needs a 'threshold'" });
    if (config.direction !== 'either' && config.threshold === undefined) issues.push({ path: ['direction'], message: "'direction' needs a 'threshold'" });
    if (config.within !== undefined && config.within > config.lookahead) issues.push({ path: ['within'], message: `'within' (${formatDuration(config.within)}) is beyond 'lookahead' (${formatDuration(config.lookahead)})` });
    const capacity = config.points ?? config.max_points;
    if (config.min_points > capacity) issues.push({ path: ['min_points'], message: `min_points (${config.min_points}) is more than the window can hold (${capacity})` });
    if (issues.length > 0) return refused(issues);
    const series = seriesKeying(config.key, input);
    const schema = extendRecord(
      generatedSchemaName(ctx.name),
      input.schema,
      [
        { name: 'predicted', ty: nullable(T_DOUBLE), doc: `The ${config.fit} trend's value ${formatDuration(config.horizon)} after the record.` },
        { name: 'slope', ty: nullable(T_DOUBLE), doc: "The trend's slope at the record's time, per second." },
        { name: 'fit_error', ty: nullable(T_DOUBLE), doc: "Root mean square of the fit's residuals over the window." },
        { name: 'points', ty: T_INT, doc: 'Values in the window.' },
        { name: 'crosses_at', ty: nullable(TIMESTAMP_MILLIS), doc: 'When the trend crosses the threshold; null if not within the lookahead (or no threshold).' },
        { name: 'eta_ms', ty: nullable(T_LONG), doc: 'Milliseconds until then.' },
        { name: 'eta', ty: nullable(T_STRING), doc: 'The same, for people: "3 h 10 min".' },
      ],
      `Output of predict '${ctx.name}': the input, with its trend.`,
    );
    const state: AvroType = {
      type: 'record',
      name: 'PredictSeries',
      namespace: 'vigil.state',
      fields: [
        { name: 'headChunk', type: 'long' },
        { name: 'headIndex', type: 'int' },
        { name: 'tailChunk', type: 'long' },
        { name: 'count', type: 'int' },
        { name: 'newest', type: 'double' },
        { name: 'run', type: 'int' },
        { name: 'last', type: 'double' },
        {
          name: 'sums',
          type: {
            type: 'record',
            name: 'WindowSums',
            fields: ['origin', 'n', 'sx', 'cx', 'sy', 'cy', 'sxy', 'cxy', 'sx2', 'cx2', 'sy2', 'cy2', 'updates'].map((name) => ({ name, type: 'double' })),
          },
        },
        { name: 'breaching', type: 'boolean', default: false },
      ],
    };
    const chunk: AvroType = {
      type: 'record',
      name: 'PredictChunk',
      namespace: 'vigil.state',
      fields: [
        { name: 't', type: { type: 'array', items: 'long' } },
        { name: 'y', type: { type: 'array', items: 'double' } },
      ],
    };
    const settings: Settings = {
      value: compileExpression(config.value, input.schema).evaluate,
      seriesOf: series.seriesOf,
      fit: config.fit,
      degree: config.degree ?? 2,
      windowMs: config.window,
      capacity,
      minPoints: config.min_points,
      horizon: config.horizon / 1000,
      threshold: config.threshold,
      direction: config.direction,
      within: config.within,
      lookahead: config.lookahead / 1000,
      extend: recordExtender(inTy.fields.map((f) => f.name), OUTPUT_FIELDS),
    };
    return compiled({
      outputs: series.outputs([DEFAULT_OUTPUT, 'breaches', 'changes'], schema),
      ...series.partitionBy,
      stores: [
        { name: 'series', kind: 'kv', value: state },
        { name: 'points', kind: 'kv', value: chunk },
      ],
      create: () => new PredictInstance(settings),
    });
  },
};

function emptySeries(): SeriesState {
  return { headChunk: 0, headIndex: 0, tailChunk: 0, count: 0, newest: Number.NEGATIVE_INFINITY, run: 0, last: Number.NaN, sums: emptySums(), breaching: false };
}

interface Settings {
  value: (v: Record<string, unknown>) => unknown;
  seriesOf: (value: Record<string, unknown>) => string;
  fit: Fit;
  degree: number;
  windowMs: number | undefined;
  capacity: number;
  minPoints: number;
  /** Seconds. */
  horizon: number;
  threshold: number | undefined;
  direction: 'up' | 'down' | 'either';
  within: number | undefined;
  lookahead: number;
  extend: RecordExtender;
}

/** Where f(x) - target changes sign in (0, limit], by a scan and bisection; undefined if nowhere. */
function firstCrossing(f: (x: number) => number, target: number, limit: number): number | undefined {
  const steps = 512;
  let prev = f(0) - target;
  let a = 0;
  for (let i = 1; i <= steps; i++) {
    const b = (limit * i) / steps;
    const cur = f(b) - target;
    if (prev === 0) return a;
    if (Math.sign(cur) !== Math.sign(prev)) {
      let lo = a;
      let hi = b;
      for (let k = 0; k < 60; k++) {
        const mid = (lo + hi) / 2;
        if (Math.sign(f(mid) - target) === Math.sign(prev)) lo = mid;
        else hi = mid;
      }
      return hi;
    }
    prev = cur;
    a = b;
  }
  return undefined;
}

class PredictInstance implements OperatorInstance {
  private series!: KeyValueStore<SeriesState>;
  private points!: KeyValueStore<Chunk>;

  constructor(private readonly s: Settings) {}

  open(ctx: OperatorContext): void {
    this.series = ctx.kv<SeriesState>('series');
    this.points = ctx.kv<Chunk>('points');
  }

  process(record: StreamRecord, ctx: OperatorContext): void {
    const s = this.s;
    const key = s.seriesOf(record.value);
    const raw = s.value(record.value);
    const y = typeof raw === 'number' ? raw : typeof raw === 'bigint' ? Number(raw) : Number.NaN;
    let st = this.series.get(key);
    if (Number.isFinite(y)) {
      if (st === undefined) st = emptySeries();
      this.add(key, st, record.timestamp, y);
      this.series.put(key, st);
    } else ctx.count('not-a-number');
    const values: unknown[] = [null, null, null, st?.count ?? 0, null, null, null];
    const model = st !== undefined && st.count >= s.minPoints ? this.fit(key, st, ctx) : undefined;
    if (model !== undefined && st !== undefined) {
      values[0] = model.at(s.horizon);
      values[1] = model.slope(0);
      values[2] = model.rmse;
      if (s.threshold !== undefined) {
        const x = this.crossing(model, s.threshold);
        if (x !== undefined) {
          const eta = Math.round(x * 1000);
          values[4] = st.newest + eta;
          values[5] = eta;
          values[6] = formatEta(eta);
        }
      }
    }
    const out: StreamRecord = { key: record.key, value: s.extend(record.value, values), timestamp: record.timestamp, ...(record.headers ? { headers: record.headers } : {}) };
    ctx.forward(out);
    if (s.within === undefined) return;
    const breaching = values[5] !== null && (values[5] as number) <= s.within;
    if (breaching) {
      ctx.count('breaches');
      ctx.emit('breaches', out);
    }
    if (st !== undefined && Number.isFinite(y) && breaching !== st.breaching) {
      st.breaching = breaching;
      this.series.put(key, st);
      ctx.emit('changes', out);
    }
  }

  private chunkKey(series: string, n: number): string {
    return `${series}\u0000${n}`;
  }

  /** Adds a point, then drops what left the window: O(1) per point (amortised over the fresh sums). */
  private add(series: string, st: SeriesState, t: number, y: number): void {
    st.run = st.count > 0 && y === st.last ? st.run + 1 : 1;
    st.last = y;
    if (st.count === this.s.capacity) this.drop(series, st);
    let tail = st.count === 0 ? undefined : this.points.get(this.chunkKey(series, st.tailChunk));
    if (st.count === 0) {
      st.headChunk = st.tailChunk = st.tailChunk + 1;
      st.headIndex = 0;
    } else if (tail!.t.length === CHUNK) {
      st.tailChunk++;
      tail = undefined;
    }
    tail ??= { t: [], y: [] };
    tail.t.push(t);
    tail.y.push(y);
    this.points.put(this.chunkKey(series, st.tailChunk), tail);
    st.count++;
    if (t > st.newest) st.newest = t;
    addPoint(st.sums, t, y);
    if (this.s.windowMs !== undefined) {
      const cut = st.newest - this.s.windowMs;
      for (let head = this.oldest(series, st); st.count > 1 && head.t <= cut; head = this.oldest(series, st)) this.drop(series, st);
    }
    if (st.sums.updates >= Math.max(this.s.capacity, 64)) {
      const { times, values } = this.window(series, st);
      resetSums(st.sums, times, values, 0, times.length, times.length);
    }
  }

  private oldest(series: string, st: SeriesState): { t: number; y: number } {
    const c = this.points.get(this.chunkKey(series, st.headChunk))!;
    return { t: c.t[st.headIndex]!, y: c.y[st.headIndex]! };
  }

  private drop(series: string, st: SeriesState): void {
    const o = this.oldest(series, st);
    removePoint(st.sums, o.t, o.y);
    st.count--;
    st.headIndex++;
    if (st.headIndex === CHUNK || st.count === 0) {
      // The oldest chunk is used up; a chunk the window still reads is never rewritten.
      this.points.delete(this.chunkKey(series, st.headChunk));
      if (st.count > 0) st.headChunk++;
      st.headIndex = 0;
    }
  }

  /** The window's points, oldest first. */
  private window(series: string, st: SeriesState): { times: number[]; values: number[] } {
    const times: number[] = [];
    const values: number[] = [];
    for (let n = st.headChunk; n <= st.tailChunk; n++) {
      const c = this.points.get(this.chunkKey(series, n))!;
      for (let i = n === st.headChunk ? st.headIndex : 0; i < c.t.length; i++) {
        times.push(c.t[i]!);
        values.push(c.y[i]!);
      }
    }
    return { times, values };
  }

  private fit(series: string, st: SeriesState, ctx: OperatorContext): Model | undefined {
    const s = this.s;
    if (s.fit === 'linear') {
      const line = lineOf(st.sums, st.newest, st.run >= st.count ? st.last : undefined);
      if (line === undefined || !Number.isFinite(line.slope)) return undefined;
      return { at: (x) => line.intercept + line.slope * x, slope: () => line.slope, rmse: line.rmse };
    }
    const { times, values: ys } = this.window(series, st);
    const xs = times.map((t) => (t - st.newest) / 1000);
    let at: (x: number) => number;
    let slope: (x: number) => number;
    if (s.fit === 'exponential') {
      if (ys.some((v) => !(v > 0))) {
        ctx.count('exponential-not-positive');
        return undefined;
      }
      const m = new ExponentialRegression(xs, ys);
      // ml-regression's exponential is y = B e^(A x).
      at = (x) => m.B * Math.exp(m.A * x);
      slope = (x) => m.A * m.B * Math.exp(m.A * x);
    } else if (s.fit === 'robust') {
      const m = new TheilSenRegression(xs, ys);
      at = (x) => m.intercept + m.slope * x;
      slope = () => m.slope;
    } else {
      if (new Set(xs).size <= s.degree) return undefined;
      const m = new PolynomialRegression(xs, ys, s.degree);
      const c = m.coefficients;
      at = (x) => c.reduceRight((acc, ci) => acc * x + ci, 0);
      slope = (x) => c.reduceRight((acc, ci, i) => (i === 0 ? acc : acc * x + i * ci), 0);
    }
    let sse = 0;
    for (let k = 0; k < xs.length; k++) sse += (ys[k]! - at(xs[k]!)) ** 2;
    const rmse = Math.sqrt(sse / xs.length);
    if (!Number.isFinite(at(0))) return undefined;
    return { at, slope, rmse };
  }

  /** Seconds until the model crosses `target` (after the evaluation time), within the lookahead. */
  private crossing(m: Model, target: number): number | undefined {
    const s = this.s;
    const now = m.at(0);
    if (now === target) return 0;
    // A one-way threshold already passed has been crossed; one not passed is crossed only going its way
    // (a trend starting below it can only cross it going up, and one above it only going down).
    if (s.direction === 'up' && now > target) return 0;
    if (s.direction === 'down' && now < target) return 0;
    let x: number | undefined;
    if (s.fit === 'linear' || s.fit === 'robust') {
      const b = m.slope(0);
      x = b === 0 ? undefined : (target - now) / b;
      if (x !== undefined && !(x > 0)) x = undefined;
    } else x = firstCrossing(m.at, target, s.lookahead);
    return x !== undefined && x <= s.lookahead ? x : undefined;
  }
}
