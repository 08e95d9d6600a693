// aggregate: windowed aggregation per group key in event time (tumbling, hopping, sliding and
// session windows), closed by event-time timers (optionally also by the wall clock).
//
// State lives only in the runtime's stores (Avro), so a restart or a rebalance restores it
// exactly; timers are persisted by the runtime. Per record: the group key and the aggregated
// fields are read once into reusable arrays, the record's windows are found arithmetically (no
// scan of open windows), their states are updated in place and put back.
import type {
  ConfigIssue,
  KeyValueStore,
  OperatorContext,
  OperatorDefinition,
  OperatorInstance,
  RecordSchema,
  StoreDecl,
  StreamRecord,
  Timer,
  WindowStore,
} from '../kernel/operator.ts';
import type { AvroType } from '../kernel/schema.ts';
import { DEFAULT_INPUT, DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import { keyOf } from '../kernel/keys.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { describeTy, recordSchemaOf, isNumeric, isStringLike, nonNull, nullable, recordTy, T_DOUBLE, T_LONG } from '../kernel/avro-types.ts';
import type { RecordTy, RecordTyField, Ty } from '../kernel/avro-types.ts';
import { suggestion } from '../kernel/diagnostics.ts';
import { AGGREGATE_FNS, DEFAULT_ACCURACY, NUMERIC_FNS, addToStates, compileAggregations, initStates, mergeStates, statesCodec } from './lib/aggregations.ts';
import type { AggregateFn, AggregationDef, CompiledAggregations } from './lib/aggregations.ts';
import { describeWindow, fixedWindowStarts, isoOrRaw, maxFixedWindows } from './lib/windows.ts';
import { badFieldName, isAvroName } from './lib/fields.ts';

export const WINDOW_TYPES = ['tumbling', 'hopping', 'sliding', 'session'] as const;
/** Hopping windows a record may fall into at most (size / advance): each is state and work per record. */
const MAX_HOPPING_WINDOWS = 1000;
export type WindowType = (typeof WINDOW_TYPES)[number];

export interface AggregateWindowConfig {
  type: WindowType;
  /** tumbling, hopping, sliding: window length (ms). */
  size?: number;
  /** hopping: distance between window starts (ms). */
  advance?: number;
  /** session: inactivity gap (ms). */
  gap?: number;
}

export interface AggregateConfig {
  group_by: string[];
  window: AggregateWindowConfig;
  /** Late allowance past a window's end (ms). */
  grace: number;
  emit: 'final' | 'update';
  wall_clock_close: boolean;
  aggregations: Record<string, AggregationDef>;
}

/** Output fields every aggregate record has besides the group fields and the aggregations. */
export const WINDOW_START = 'window_start';
export const WINDOW_END = 'window_end';

const TIMESTAMP_MILLIS: Ty = { k: 'long', attrs: { logicalType: 'timestamp-millis' } };
/** Store names (declared in stores(), used by the instance). */
const WINDOWS_STORE = 'windows';
const PANES_STORE = 'panes';
const SESSIONS_STORE = 'sessions';
/** Timer key tags: close a window / drop a sliding pane. */
const CLOSE = 'c';
const SWEEP = 's';

// ---------------------------------------------------------------------------------------------
// Schema derivation and checks

interface GroupField {
  path: string;
  parts: string[];
  /** Output field name: the last segment of the path. */
  name: string;
  ty: Ty;
}

interface AggregatePlan {
  groups: GroupField[];
  /** The output record schema. */
  schema: RecordSchema;
  issues: ConfigIssue[];
}


/** Type of a dotted field path (records, then map values); undefined when there is no such field. */
function pathTy(root: RecordTy, path: string): Ty | undefined {
  let t: Ty = root;
  let mayBeNull = false;
  for (const part of path.split('.')) {
    if (t.k === 'nullable') mayBeNull = true;
    const base = nonNull(t);
    if (base.k === 'record') {
      const f: RecordTyField | undefined = base.byName.get(part);
      if (f === undefined) return undefined;
      t = f.ty;
    } else if (base.k === 'map') {
      // A map key may be absent.
      mayBeNull = true;
      t = base.values;
    } else {
      return undefined;
    }
  }
  return mayBeNull ? nullable(t) : t;
}

function isGroupable(t: Ty): boolean {
  const b = nonNull(t);
  return isStringLike(b) || b.k === 'int' || b.k === 'long' || b.k === 'boolean';
}

function isScalar(t: Ty): boolean {
  const b = nonNull(t);
  return isStringLike(b) || isNumeric(b) || b.k === 'boolean';
}

function outputTy(fn: AggregateFn, field: Ty | undefined): Ty {
  switch (fn) {
    case 'count':
      return T_LONG;
    case 'sum':
      return T_DOUBLE;
    case 'first':
    case 'last':
      return nullable(nonNull(field ?? T_DOUBLE));
    default:
      return nullable(T_DOUBLE);
  }
}

function aggregationDoc(d: AggregationDef): string {
  const f = d.field === undefined ? '' : ` of ${d.field}`;
  switch (d.fn) {
    case 'count':
      return d.field === undefined ? 'Number of records in the window.' : `Number of non-null values${f}.`;
    case 'stddev':
      return `Population standard deviation${f} (null when no values).`;
    case 'percentile':
      return `Percentile ${d.p ?? '?'}${f} (DDSketch, relative accuracy ${d.accuracy ?? DEFAULT_ACCURACY}; null when no values).`;
    case 'first':
    case 'last':
      return `${d.fn === 'first' ? 'Earliest' : 'Latest'} non-null value${f} by event time (null when none).`;
    case 'sum':
      return `Sum${f} (0 when no values).`;
    default:
      return `${d.fn === 'mean' ? 'Mean' : d.fn === 'min' ? 'Minimum' : 'Maximum'}${f} (null when no values).`;
  }
}

function buildPlan(config: AggregateConfig, input: RecordSchema, name: string): AggregatePlan {
  const issues: ConfigIssue[] = [];
  const inTy = recordTy(input);
  const groups: GroupField[] = [];
  const taken = new Map<string, string>([
    [WINDOW_START, 'the window start'],
    [WINDOW_END, 'the window end'],
  ]);

  const groupBy = Array.isArray(config.group_by) ? config.group_by : [];
  groupBy.forEach((path, i) => {
    const ty = pathTy(inTy, path);
    if (ty === undefined) {
      issues.push({ path: ['group_by', i], code: 'EXPR_UNKNOWN_FIELD', message: `the input has no field '${path}'${suggestion(path, inTy.fields.map((f) => f.name))}` });
      return;
    }
    if (!isGroupable(ty)) {
      issues.push({ path: ['group_by', i], code: 'EXPR_TYPE', message: `cannot group by '${path}': it is ${describeTy(ty)}; group_by takes string, enum, int, long or boolean fields` });
      return;
    }
    const parts = path.split('.');
    const name = parts[parts.length - 1]!;
    if (!isAvroName(name)) {
      issues.push({ path: ['group_by', i], code: 'INVALID_VALUE', message: `group field '${path}' would be output as '${name}', which is not a valid Avro field name` });
      return;
    }
    const clash = taken.get(name);
    if (clash !== undefined) {
      issues.push({ path: ['group_by', i], code: 'INVALID_VALUE', message: `group field '${path}' is output as '${name}', which is already ${clash}` });
      return;
    }
    taken.set(name, `the group field '${path}'`);
    groups.push({ path, parts, name, ty });
  });

  const w = config.window;
  if (w !== undefined && w !== null && typeof w === 'object') {
    const need: Record<WindowType, readonly ('size' | 'advance' | 'gap')[]> = {
      tumbling: ['size'],
      hopping: ['size', 'advance'],
      sliding: ['size'],
      session: ['gap'],
    };
    const wanted = need[w.type];
    if (wanted !== undefined) {
      for (const k of wanted) {
        if (w[k] === undefined) issues.push({ path: ['window'], code: 'MISSING_FIELD', message: `a ${w.type} window needs '${k}'` });
      }
      for (const k of ['size', 'advance', 'gap'] as const) {
        if (w[k] !== undefined && !wanted.includes(k)) {
          issues.push({ path: ['window', k], at: 'key', code: 'UNKNOWN_FIELD', message: `'${k}' does not apply to a ${w.type} window (it takes ${wanted.join(' and ')})` });
        }
      }
      for (const k of wanted) {
        const v = w[k];
        if (v !== undefined && !(v >= 1)) issues.push({ path: ['window', k], code: 'INVALID_VALUE', message: `'${k}' must be at least 1ms` });
      }
      if (w.type === 'hopping' && w.size !== undefined && w.advance !== undefined && w.advance > w.size) {
        issues.push({ path: ['window', 'advance'], code: 'INVALID_VALUE', message: `'advance' (${w.advance}ms) must not exceed 'size' (${w.size}ms): records between windows would be dropped` });
      } else if (w.type === 'hopping' && w.size !== undefined && w.advance !== undefined && w.advance >= 1 && w.size / w.advance > MAX_HOPPING_WINDOWS) {
        issues.push({ path: ['window', 'advance'], code: 'INVALID_VALUE', message: `'advance' (${w.advance}ms) puts every record in ${Math.ceil(w.size / w.advance)} windows of ${w.size}ms; at most ${MAX_HOPPING_WINDOWS}: advance by ${Math.ceil(w.size / MAX_HOPPING_WINDOWS)}ms or more` });
      }
    }
  }

  const fields: { name: string; ty: Ty; doc?: string }[] = groups.map((g) => ({ name: g.name, ty: g.ty, doc: `Group field '${g.path}'.` }));
  fields.push({ name: WINDOW_START, ty: TIMESTAMP_MILLIS, doc: 'Window start (inclusive), epoch milliseconds.' });
  fields.push({ name: WINDOW_END, ty: TIMESTAMP_MILLIS, doc: 'Window end (exclusive), epoch milliseconds.' });

  const aggs = config.aggregations ?? {};
  if (Object.keys(aggs).length === 0) issues.push({ path: ['aggregations'], code: 'MISSING_FIELD', message: 'aggregate needs at least one aggregation' });
  for (const [name, d] of Object.entries(aggs)) {
    const at = ['aggregations', name];
    const bad = badFieldName(name, at);
    if (bad !== undefined) {
      issues.push(bad);
      continue;
    }
    const clash = taken.get(name);
    if (clash !== undefined) {
      issues.push({ path: at, at: 'key', code: 'INVALID_VALUE', message: `output field '${name}' is already ${clash}` });
      continue;
    }
    taken.set(name, `the aggregation '${name}'`);
    if (!AGGREGATE_FNS.includes(d.fn)) continue; // the spec parser reports it
    let fty: Ty | undefined;
    if (d.field === undefined) {
      if (d.fn !== 'count') issues.push({ path: at, code: 'MISSING_FIELD', message: `'${d.fn}' needs a 'field'` });
    } else {
      fty = pathTy(inTy, d.field);
      if (fty === undefined) {
        issues.push({ path: [...at, 'field'], code: 'EXPR_UNKNOWN_FIELD', message: `the input has no field '${d.field}'${suggestion(d.field, inTy.fields.map((f) => f.name))}` });
      } else if (NUMERIC_FNS.has(d.fn) && !isNumeric(nonNull(fty))) {
        issues.push({ path: [...at, 'field'], code: 'EXPR_TYPE', message: `'${d.fn}' needs a numeric field, but '${d.field}' is ${describeTy(fty)}` });
      } else if ((d.fn === 'first' || d.fn === 'last' || d.fn === 'count') && !isScalar(fty)) {
        issues.push({ path: [...at, 'field'], code: 'EXPR_TYPE', message: `'${d.fn}' takes a string, enum, number or boolean field, but '${d.field}' is ${describeTy(fty)}` });
      }
    }
    if (d.fn === 'percentile') {
      if (d.p === undefined) issues.push({ path: at, code: 'MISSING_FIELD', message: "'percentile' needs 'p' (the quantile, e.g. 0.99)" });
    } else {
      if (d.p !== undefined) issues.push({ path: [...at, 'p'], at: 'key', code: 'UNKNOWN_FIELD', message: `'p' only applies to 'percentile'` });
      if (d.accuracy !== undefined) issues.push({ path: [...at, 'accuracy'], at: 'key', code: 'UNKNOWN_FIELD', message: `'accuracy' only applies to 'percentile'` });
    }
    fields.push({ name, ty: outputTy(d.fn, fty), doc: aggregationDoc(d) });
  }

  const schema = recordSchemaOf(`${generatedSchemaName(name)}Aggregate`, fields, `Output of aggregate '${name}': one record per group and window.`);
  return { groups, schema, issues };
}

// ---------------------------------------------------------------------------------------------
// Runtime

/** One open session of a group: [s, e) with e = last record's time + gap. */
interface Session {
  s: number;
  e: number;
  a: unknown[];
}

/** Records of one group at one event time (sliding windows); w = 1 once the window ending there exists. */
interface Pane {
  w: 0 | 1;
  a: unknown[];
}

function readPath(v: Record<string, unknown>, parts: readonly string[]): unknown {
  let x: unknown = v;
  for (let i = 0; i < parts.length; i++) {
    if (x === null || typeof x !== 'object') return null;
    const o = x as Record<string, unknown>;
    const k = parts[i]!;
    x = Object.hasOwn(o, k) ? o[k] : null;
  }
  return x === undefined ? null : x;
}

type Kind = 'fixed' | 'sliding' | 'session';

class AggregateInstance implements OperatorInstance {
  private readonly kind: Kind;
  private readonly size: number;
  private readonly advance: number;
  private readonly gap: number;
  private readonly grace: number;
  private readonly update: boolean;
  private readonly wallClose: boolean;
  private readonly groupParts: string[][];
  private readonly groupNames: string[];
  private readonly slotParts: (string[] | undefined)[];
  private readonly aggs: CompiledAggregations;
  /** Reusable per-record buffers. */
  private readonly gv: unknown[];
  private readonly sv: unknown[];
  private readonly starts: number[];
  private readonly overlaps: number[] = [];
  private windows: WindowStore<unknown[]> | undefined;
  private panes: WindowStore<Pane> | undefined;
  private sessions: KeyValueStore<Session[]> | undefined;

  constructor(config: AggregateConfig, p: AggregatePlan) {
    const w = config.window;
    this.kind = w.type === 'session' ? 'session' : w.type === 'sliding' ? 'sliding' : 'fixed';
    this.size = w.size ?? 0;
    this.advance = w.type === 'hopping' ? w.advance! : this.size;
    this.gap = w.gap ?? 0;
    this.grace = config.grace ?? 0;
    this.update = config.emit === 'update';
    this.wallClose = config.wall_clock_close === true;
    this.groupParts = p.groups.map((g) => g.parts);
    this.groupNames = p.groups.map((g) => g.name);
    this.aggs = compileAggregations(config.aggregations);
    this.slotParts = this.aggs.slots.map((s) => (s.field === undefined ? undefined : s.field.split('.')));
    this.gv = new Array<unknown>(this.groupParts.length).fill(null);
    this.sv = new Array<unknown>(this.slotParts.length).fill(null);
    this.starts = new Array<number>(this.kind === 'fixed' ? maxFixedWindows(this.size, this.advance) : 1).fill(0);
  }

  /**
   * Every result still to come has a timestamp of at least watermark - grace: a window still open
   * ends after it (end - 1 >= watermark - grace), and an update goes out with its window's end.
   * Passing on watermark - grace lets operators after this one treat its results as on time.
   */
  onWatermark(watermark: number): number {
    return watermark - this.grace;
  }

  process(rec: StreamRecord, ctx: OperatorContext): void {
    const key = this.readRecord(rec.value);
    if (this.kind === 'fixed') this.processFixed(rec.timestamp, key, ctx);
    else if (this.kind === 'sliding') this.processSliding(rec.timestamp, key, ctx);
    else this.processSession(rec.timestamp, key, ctx);
  }

  onTimer(timer: Timer, ctx: OperatorContext): void {
    const k = timer.key;
    const sep = k.indexOf('\u0000');
    const tag = k[0];
    const start = Number(k.slice(1, sep));
    const key = k.slice(sep + 1);
    if (tag === SWEEP) {
      this.panesStore(ctx).delete(key, start);
      return;
    }
    if (this.kind === 'fixed') this.closeFixed(timer, key, start, ctx);
    else if (this.kind === 'sliding') this.closeSliding(timer, key, start, ctx);
    else this.closeSession(timer, key, start, ctx);
  }

  // --- tumbling and hopping -------------------------------------------------------------------

  private processFixed(t: number, key: string, ctx: OperatorContext): void {
    const starts = this.starts;
    const n = fixedWindowStarts(t, this.size, this.advance, starts);
    const clock = this.clock(ctx);
    const store = this.windowsStore(ctx);
    let accepted = false;
    for (let i = 0; i < n; i++) {
      const s = starts[i]!;
      const end = s + this.size;
      if (clock >= end + this.grace) continue;
      accepted = true;
      let st = store.get(key, s);
      if (st === undefined) {
        st = initStates(this.aggs);
        this.scheduleClose(ctx, s, key, end + this.grace);
      }
      addToStates(this.aggs, st, this.sv, t);
      store.put(key, s, st);
      if (this.update) this.emit(ctx, key, this.gv, s, end, st);
    }
    if (!accepted) {
      const s = starts[n - 1]!;
      this.late(ctx, t, key, s, s + this.size, clock);
    }
  }

  private closeFixed(timer: Timer, key: string, start: number, ctx: OperatorContext): void {
    const store = this.windowsStore(ctx);
    const st = store.get(key, start);
    if (st === undefined) return;
    this.cancelOther(timer, ctx);
    this.emit(ctx, key, undefined, start, start + this.size, st);
    store.delete(key, start);
  }

  // --- sliding -------------------------------------------------------------------------------

  private processSliding(t: number, key: string, ctx: OperatorContext): void {
    const size = this.size;
    const grace = this.grace;
    const clock = this.clock(ctx);
    // The last window that could hold this record ends at t + size.
    if (clock >= t + size + grace) {
      this.late(ctx, t, key, t, t + size, clock);
      return;
    }
    const store = this.panesStore(ctx);
    let pane = store.get(key, t);
    if (pane === undefined) {
      pane = { w: 0, a: initStates(this.aggs) };
      // Dropped once every window that may hold it has closed; +1 orders it after those closes.
      ctx.schedule({ kind: 'event', at: t + size + grace + 1, key: `${SWEEP}${t}\u0000${key}` });
    }
    addToStates(this.aggs, pane.a, this.sv, t);
    if (pane.w === 0 && clock < t + 1 + grace) {
      pane.w = 1;
      this.scheduleClose(ctx, t, key, t + 1 + grace);
    }
    store.put(key, t, pane);
    if (this.update) {
      // Every existing, still-open window ending in (t, t + size] now holds this record.
      const affected = store.fetch(key, t, t + size - 1);
      for (let i = 0; i < affected.length; i++) {
        const [u, p] = affected[i]!;
        if (p.w === 1 && clock < u + 1 + grace) this.emit(ctx, key, this.gv, u - size + 1, u + 1, this.slidingWindow(store, key, u));
      }
    }
  }

  /** The aggregate of window [u - size + 1, u + 1), merged from its panes. */
  private slidingWindow(store: WindowStore<Pane>, key: string, u: number): unknown[] {
    const acc = initStates(this.aggs);
    const panes = store.fetch(key, u - this.size + 1, u);
    for (let i = 0; i < panes.length; i++) mergeStates(this.aggs, acc, panes[i]![1].a);
    return acc;
  }

  private closeSliding(timer: Timer, key: string, t: number, ctx: OperatorContext): void {
    const store = this.panesStore(ctx);
    const pane = store.get(key, t);
    if (pane === undefined || pane.w !== 1) return;
    this.cancelOther(timer, ctx);
    this.emit(ctx, key, undefined, t - this.size + 1, t + 1, this.slidingWindow(store, key, t));
  }

  // --- session -------------------------------------------------------------------------------

  private processSession(t: number, key: string, ctx: OperatorContext): void {
    const gap = this.gap;
    const grace = this.grace;
    const clock = this.clock(ctx);
    const store = this.sessionsStore(ctx);
    const list = store.get(key) ?? [];
    const hits = this.overlaps;
    hits.length = 0;
    for (let i = 0; i < list.length; i++) {
      const ss = list[i]!;
      // Skip sessions already closed whose timer has not fired yet (wall-clock close).
      if (ss.e + grace <= clock) continue;
      if (ss.s < t + gap && t < ss.e) hits.push(i);
    }
    let session: Session;
    if (hits.length === 0) {
      if (t + gap + grace <= clock) {
        this.late(ctx, t, key, t, t + gap, clock);
        return;
      }
      session = { s: t, e: t + gap, a: initStates(this.aggs) };
      let at = list.length;
      while (at > 0 && list[at - 1]!.s > t) at--;
      list.splice(at, 0, session);
      this.scheduleClose(ctx, t, key, session.e + grace);
    } else {
      session = list[hits[0]!]!;
      // Merge the other sessions this record bridges (ascending, disjoint) into the first.
      for (let j = hits.length - 1; j >= 1; j--) {
        const other = list[hits[j]!]!;
        mergeStates(this.aggs, session.a, other.a);
        if (other.e > session.e) session.e = other.e;
        this.cancelClose(ctx, other.s, key);
        list.splice(hits[j]!, 1);
      }
      if (t + gap > session.e) session.e = t + gap;
      if (t < session.s) {
        this.cancelClose(ctx, session.s, key);
        session.s = t;
        this.scheduleClose(ctx, t, key, session.e + grace);
      }
      // Otherwise the close timer (at an older end + grace) moves itself when it fires.
    }
    addToStates(this.aggs, session.a, this.sv, t);
    store.put(key, list);
    if (this.update) this.emit(ctx, key, this.gv, session.s, session.e, session.a);
  }

  private closeSession(timer: Timer, key: string, start: number, ctx: OperatorContext): void {
    const store = this.sessionsStore(ctx);
    const list = store.get(key);
    if (list === undefined) return;
    let i = 0;
    while (i < list.length && list[i]!.s !== start) i++;
    const session = list[i];
    if (session === undefined) return;
    const due = session.e + this.grace;
    if (due > timer.at) {
      // The session grew since this timer was set: move it (same key, so it replaces itself).
      ctx.schedule({ kind: timer.kind, at: due, key: timer.key });
      return;
    }
    this.cancelOther(timer, ctx);
    this.emit(ctx, key, undefined, session.s, session.e, session.a);
    list.splice(i, 1);
    if (list.length === 0) store.delete(key);
    else store.put(key, list);
  }

  // --- shared --------------------------------------------------------------------------------

  /** Reads the group values and slot values into the buffers; returns the group's store key. */
  private readRecord(v: Record<string, unknown>): string {
    const gv = this.gv;
    const gp = this.groupParts;
    for (let i = 0; i < gp.length; i++) gv[i] = readPath(v, gp[i]!);
    const sv = this.sv;
    const sp = this.slotParts;
    for (let i = 0; i < sp.length; i++) {
      const parts = sp[i];
      sv[i] = parts === undefined ? true : readPath(v, parts);
    }
    return JSON.stringify(gv);
  }

  /** Time against which windows close: the watermark, or with wall_clock_close the later of it and the wall clock. */
  private clock(ctx: OperatorContext): number {
    const wm = ctx.watermark();
    if (!this.wallClose) return wm;
    const now = ctx.now();
    return now > wm ? now : wm;
  }

  private scheduleClose(ctx: OperatorContext, start: number, key: string, at: number): void {
    const k = `${CLOSE}${start}\u0000${key}`;
    ctx.schedule({ kind: 'event', at, key: k });
    if (this.wallClose) ctx.schedule({ kind: 'wall', at, key: k });
  }

  private cancelClose(ctx: OperatorContext, start: number, key: string): void {
    const k = `${CLOSE}${start}\u0000${key}`;
    ctx.cancel('event', k);
    if (this.wallClose) ctx.cancel('wall', k);
  }

  private cancelOther(timer: Timer, ctx: OperatorContext): void {
    if (this.wallClose) ctx.cancel(timer.kind === 'event' ? 'wall' : 'event', timer.key);
  }

  /** Forwards one result; `groupValues` undefined = decode them from the store key. */
  private emit(ctx: OperatorContext, key: string, groupValues: readonly unknown[] | undefined, start: number, end: number, states: readonly unknown[]): void {
    const gv = groupValues ?? (JSON.parse(key) as unknown[]);
    const out: Record<string, unknown> = {};
    const names = this.groupNames;
    for (let i = 0; i < names.length; i++) out[names[i]!] = gv[i];
    out[WINDOW_START] = start;
    out[WINDOW_END] = end;
    const outputs = this.aggs.outputs;
    for (let i = 0; i < outputs.length; i++) {
      const o = outputs[i]!;
      out[o.name] = o.result(states[o.slot]);
    }
    ctx.forward({ key: names.length === 1 ? keyOf(gv) : key, value: out, timestamp: end - 1 });
  }

  private late(ctx: OperatorContext, t: number, key: string, start: number, end: number, clock: number): void {
    ctx.count('late');
    const wm = ctx.watermark();
    const against = this.wallClose ? `watermark ${wm}, wall clock ${ctx.now()}` : `watermark ${wm}`;
    const what = this.kind === 'sliding' ? 'the last window that could hold it' : this.kind === 'session' ? 'its session window' : this.starts.length > 1 ? 'its last window' : 'its window';
    ctx.deadLetter(
      'late',
      `record at ${t} (${isoOrRaw(t)}) of group ${key} is late: ${what} ${describeWindow(start, end)} closed at ${end + this.grace} ` +
        `(end + grace ${this.grace}ms) <= ${clock} (${against})`,
    );
  }

  private windowsStore(ctx: OperatorContext): WindowStore<unknown[]> {
    return (this.windows ??= ctx.windows<unknown[]>(WINDOWS_STORE));
  }
  private panesStore(ctx: OperatorContext): WindowStore<Pane> {
    return (this.panes ??= ctx.windows<Pane>(PANES_STORE));
  }
  private sessionsStore(ctx: OperatorContext): KeyValueStore<Session[]> {
    return (this.sessions ??= ctx.kv<Session[]>(SESSIONS_STORE));
  }
}

function stores(config: AggregateConfig, aggs: CompiledAggregations): StoreDecl[] {
  const w = config.window;
  const grace = config.grace ?? 0;
  const states = statesCodec(aggs, 'States');
  // The window's shape, then the state slots (an aggregation added at the end appends a slot).
  const layout = [`window ${w.type} size=${w.size ?? 0} advance=${w.advance ?? w.size ?? 0} gap=${w.gap ?? 0}`, ...aggs.slots.map((slot) => `slot ${slot.id}`)];
  // Entries are deleted when their windows close; the retention (from a window's start) only
  // bounds what the store keeps if a close was missed, and lies past every close.
  if (w.type === 'session') {
    const session: AvroType = {
      type: 'record',
      name: 'Session',
      namespace: 'vigil.state',
      fields: [
        { name: 's', type: 'long' },
        { name: 'e', type: 'long' },
        { name: 'a', type: states.schema },
      ],
    };
    return [
      {
        name: SESSIONS_STORE,
        kind: 'kv',
        layout,
        value: { type: 'array', items: session },
        codec: {
          toAvro: (list) => (list as Session[]).map((x) => ({ s: x.s, e: x.e, a: states.toAvro(x.a) })),
          fromAvro: (list) => (list as Array<{ s: number; e: number; a: Record<string, unknown> }>).map((x) => ({ s: x.s, e: x.e, a: states.fromAvro(x.a) })),
        },
      },
    ];
  }
  const size = w.size ?? 0;
  if (w.type === 'sliding') {
    return [
      {
        name: PANES_STORE,
        kind: 'window',
        layout,
        retentionMs: 2 * size + grace + 1,
        value: { type: 'record', name: 'Pane', namespace: 'vigil.state', fields: [{ name: 'w', type: 'int' }, { name: 'a', type: states.schema }] },
        codec: {
          toAvro: (p) => ({ w: (p as Pane).w, a: states.toAvro((p as Pane).a) }),
          fromAvro: (p) => ({ w: (p as { w: 0 | 1 }).w, a: states.fromAvro((p as { a: Record<string, unknown> }).a) }),
        },
      },
    ];
  }
  return [
    {
      name: WINDOWS_STORE,
      kind: 'window',
      layout,
      retentionMs: 2 * size + grace,
      value: states.schema,
      codec: { toAvro: (a) => states.toAvro(a as unknown[]), fromAvro: (a) => states.fromAvro(a as Record<string, unknown>) },
    },
  ];
}

const DESCRIPTION = `
Groups records by \`group_by\` and aggregates each group over event-time windows. Windows are half-open,
\`[start, end)\`, in epoch milliseconds of event time (the source's timestamp field).

**Windows.**
- \`tumbling {size}\`: back-to-back windows \`[k*size, (k+1)*size)\`, aligned to epoch 0 (so \`1m\` windows start on the minute, UTC).
- \`hopping {size, advance}\`: windows of length \`size\` starting at every multiple of \`advance\` (aligned to epoch 0;
  \`advance <= size\`); a record falls into \`ceil(size / advance)\` windows.
- \`sliding {size}\`: one window per distinct event time \`t\` of a group, ending at it: \`[t - size + 1, t + 1)\`, i.e. the
  group's records with event time in \`(t - size, t]\` ("the last \`size\` as of each record"). Records at the same
  millisecond share one window. A record arriving out of order also counts in the still-open windows of later
  records of its group.
- \`session {gap}\`: records of a group less than \`gap\` apart (directly or through a chain of records) form one session
  \`[first, last + gap)\`; a record that bridges two sessions merges them.

**Closing and lateness.** The watermark is the task's highest event time minus the source's \`max_out_of_order\`; a
record is handled with the watermark as it was before it. A window is closed once the watermark reaches
\`end + grace\`. A record updates every window containing it that is still open; a record none of whose windows is
open is late: it changes nothing, is counted in the \`late\` metric and goes to the dead-letter topic with reason
\`late\` and the window bounds and watermark in its detail. For hopping windows a record is late only when all its
windows are closed. A sliding record is late once the last window that could hold it, \`[t, t + size)\`, is closed
(its own window may already be closed while later ones still take it). A session record is late when it touches no
open session and its own \`[t, t + gap)\` is closed.

Windows are closed by event-time timers at \`end + grace\`, which the runtime persists: no scan of open windows. So
with \`emit: final\` a window's result appears only once a later record moves the watermark past \`end + grace\`: a
stream that goes quiet holds its last windows open. \`wall_clock_close: true\` also closes each window when the wall
clock passes \`end + grace\` (event times are epoch ms, so the two compare). The trade-off: a window is then closed at
the earlier of the two, so a record delayed more than \`grace\` in wall-clock time (producer lag, a consumer catching
up on a backlog, clock skew) finds its window closed and is late; replaying old data with it on marks almost
everything late. Use it for live streams, with a grace that covers the expected end-to-end delay (for sliding
windows, which end at their record's own time, a grace of 0 would close each window before its record arrives).

**Emission.** \`emit: final\` forwards one record per group and window when the window closes. \`emit: update\`
forwards the window's current result after every record that changes it, and once more when it closes (the last
record of a window is its final result). In update mode a session merge emits the merged session, which supersedes
the results emitted for the sessions it absorbed (they have other \`window_start\`s).

**Output.** A record of schema \`vigil.generated.<OperatorName>Aggregate\`: the group fields (named by the last segment
of their path, with their input types; a path through a map is nullable), \`window_start\` and \`window_end\`
(\`long\`, \`timestamp-millis\`), then one field per aggregation: \`count\` is a \`long\`, \`sum\` a \`double\` (0 when there
are no values), \`min\`, \`max\`, \`mean\`, \`stddev\` and \`percentile\` nullable \`double\`s (null when there are no values),
\`first\` and \`last\` the field's type, nullable. The record's timestamp is \`window_end - 1\`, the last millisecond in the
window (for a sliding window, the event time it ends at), so it is never earlier than the records it summarises.
Its key is the group value (as a string; null for a null value) with one \`group_by\` field, else the JSON array of the
group values, e.g. \`["web-1","cpu.user"]\`.

**Functions.** null values and NaN or infinite numbers are ignored, as SQL ignores NULL; \`count\` without a field counts
records, with a field it counts the values that are not ignored.
\`sum\`, \`min\`, \`max\`, \`mean\`; \`stddev\` is the *population* standard deviation (divides by n; Welford's
algorithm, numerically stable and mergeable); \`first\` and \`last\` take the value with the earliest / latest event time
(ties: the first / last to arrive); \`percentile\` with \`p\` in [0, 1] returns the value at rank \`floor(p * (n - 1))\`
of the sorted values (nearest rank, no interpolation) estimated by a DDSketch within relative error \`accuracy\`
(default 0.01, i.e. 1%) and clamped to the exact min and max; percentiles of one field and accuracy share one sketch.

**State.** All state is in changelogged stores (Avro) and timers, so a restart or rebalance resumes exactly. Per
group: tumbling and hopping keep one entry per open window; sliding keeps one pane per distinct event time for
\`size + grace\` and merges the panes of a window when it emits (costlier than the others with many distinct times);
sessions keep their open sessions. The partitioning is by \`group_by\` (the planner repartitions when needed).

**Chaining.** An aggregate passes on its input watermark minus \`grace\` (every result still to come is at least that
recent), so operators after it, in the same sub-topology or past a repartition, see none of its results as late and need
no extra grace: an aggregate of aggregates gets every window, even when event time jumps.
`.trim();

export const aggregateOperator: OperatorDefinition<AggregateConfig> = {
  type: 'aggregate',
  category: 'analysis',
  summary: 'Aggregates records per group over tumbling, hopping, sliding or session windows in event time.',
  description: DESCRIPTION,
  config: {
    group_by: {
      kind: 'array',
      min: 1,
      items: { kind: 'field', description: 'An input field (dotted path allowed) of type string, enum, int, long or boolean.' },
      description:
        'Fields whose values form the group key. Records are partitioned by them (the planner inserts a repartition topic when needed). ' +
        'Each is an output field named by the last segment of its path.',
      examples: [['host', 'name'], ['service'], ['tags.region']],
    },
    window: {
      kind: 'object',
      description:
        'The windows: `{type: tumbling, size}`, `{type: hopping, size, advance}`, `{type: sliding, size}` or `{type: session, gap}`. ' +
        'Windows are [start, end) in event time, tumbling and hopping ones aligned to epoch 0.',
      fields: {
        type: {
          kind: 'enum',
          values: WINDOW_TYPES,
          description:
            'tumbling: fixed back-to-back windows; hopping: fixed windows starting every `advance`; sliding: a window per record of the ' +
            'group ending at its event time and covering the `size` before it; session: records of the group less than `gap` apart.',
        },
        size: { kind: 'duration', optional: true, min: 1, description: 'Window length (tumbling, hopping, sliding).', examples: ['1m', '5m', '1h'] },
        advance: { kind: 'duration', optional: true, min: 1, description: 'Hopping only: distance between window starts, at most `size`.', examples: ['1m'] },
        gap: { kind: 'duration', optional: true, min: 1, description: 'Session only: inactivity gap that ends a session.', examples: ['5m'] },
      },
      examples: [{ type: 'tumbling', size: '1m' }, { type: 'hopping', size: '5m', advance: '1m' }, { type: 'sliding', size: '5m' }, { type: 'session', gap: '10m' }],
    },
    grace: {
      kind: 'duration',
      default: 0,
      description:
        'How long after its end a window still takes records: it closes when the watermark (or, with wall_clock_close, the wall clock) reaches end + grace. ' +
        "The watermark already lags by the source's max_out_of_order; grace adds to it.",
      examples: ['30s', '2m'],
    },
    emit: {
      kind: 'enum',
      values: ['final', 'update'],
      default: 'final',
      description: 'final: one result per window when it closes. update: the current result after every record that changes the window, plus the final one when it closes.',
    },
    wall_clock_close: {
      kind: 'boolean',
      default: false,
      description:
        'Also close windows when the wall clock passes end + grace, so results appear when a stream goes quiet. ' +
        'Records delayed by more than grace (wall-clock time) then become late.',
    },
    aggregations: {
      kind: 'map',
      min: 1,
      items: {
        kind: 'object',
        description: 'One aggregation: `{fn, field, p, accuracy}`.',
        fields: {
          fn: {
            kind: 'enum',
            values: AGGREGATE_FNS,
            description:
              'count (long; records, or non-null values of `field`), sum, min, max, mean, stddev (population), first, last (by event time; ties by arrival), ' +
              'percentile (DDSketch; needs `p`).',
          },
          field: { kind: 'field', optional: true, description: 'The input field aggregated; required except for count. Numeric for sum, min, max, mean, stddev and percentile.' },
          p: { kind: 'number', optional: true, min: 0, max: 1, description: 'percentile only: the quantile, e.g. 0.5, 0.99.', examples: [0.5, 0.99] },
          accuracy: {
            kind: 'number',
            optional: true,
            min: 0.001,
            max: 0.2,
            description: 'percentile only: the sketch\'s relative accuracy (default 0.01 = 1%). Smaller is more precise and larger in state.',
            examples: [0.01, 0.005],
          },
        },
      },
      description:
        'Output field name -> `{fn, field?, p?, accuracy?}`, in output order. fn is one of count, sum, min, max, mean, stddev, first, last, percentile. ' +
        'count is a long, sum a double, first/last the field\'s type (nullable), the others nullable doubles. Null, NaN and infinite values are ignored.',
      examples: [{ samples: { fn: 'count' }, avg: { fn: 'mean', field: 'value' }, p99: { fn: 'percentile', field: 'value', p: 0.99 } }],
    },
  },
  examples: [
    {
      title: 'CPU per host and metric per minute, with a p99',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
operators:
  - name: cpu-per-minute
    type: aggregate
    group_by: [host, name]
    window: { type: tumbling, size: 1m }
    grace: 30s
    aggregations:
      samples: { fn: count }
      avg: { fn: mean, field: value }
      peak: { fn: max, field: value }
      p99: { fn: percentile, field: value, p: 0.99 }
`,
    },
    {
      title: 'Five-minute averages every minute, closed on the wall clock when the stream goes quiet',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
operators:
  - name: load-5m
    type: aggregate
    group_by: [host]
    window: { type: hopping, size: 5m, advance: 1m }
    grace: 10s
    wall_clock_close: true
    aggregations:
      avg: { fn: mean, field: value }
      spread: { fn: stddev, field: value }
`,
    },
    {
      title: 'Error bursts per service (sessions of log lines)',
      yaml: `sources:
  - name: logs
    topic: telemetry.logs
    schema: vigil.telemetry.LogLine
operators:
  - name: bursts
    type: aggregate
    group_by: [service]
    window: { type: session, gap: 2m }
    emit: update
    aggregations:
      lines: { fn: count }
      first_message: { fn: first, field: message }
      last_message: { fn: last, field: message }
`,
    },
    {
      title: 'Trailing one-minute mean at every sample',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
operators:
  - name: trailing
    type: aggregate
    group_by: [host, name]
    window: { type: sliding, size: 1m }
    aggregations:
      avg: { fn: mean, field: value }
      samples: { fn: count }
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const p = buildPlan(config, input.schema, ctx.name);
    if (p.issues.length > 0) return refused(p.issues);
    const aggs = compileAggregations(config.aggregations);
    return compiled({
      // Output fields are named by the last segment of each group_by path.
      outputs: [{ name: DEFAULT_OUTPUT, schema: p.schema, keyFields: p.groups.map((g) => g.name) }],
      partitionBy: { [DEFAULT_INPUT]: [...config.group_by] },
      stores: stores(config, aggs),
      create: () => new AggregateInstance(config, p),
    });
  },
};
