// Aggregate functions over window contents, with mergeable states stored in Avro.
//
// An aggregation list compiles to state slots and outputs. A slot holds one state per window
// (count, sum, a Welford triple, a quantile sketch...); outputs read a slot. Slots with the same
// function and field are shared: p50, p95 and p99 of one field keep a single sketch.
//
// Per record the caller reads each slot's field once and calls add(); merge() combines two
// states (session merges, sliding panes). States are mutated in place where possible; merge()
// never keeps a reference to its second argument, so merging a stored state into a fresh one
// leaves the stored one untouched.
//
// Missing values: null, undefined, NaN and +/-Infinity are ignored by every function (as SQL
// ignores NULL), except `count` without a field, which counts records.
import type { AvroField, AvroType } from '../../kernel/schema.ts';
import { QuantileSketch } from './quantile-sketch.ts';
import type { SketchState } from './quantile-sketch.ts';

export const AGGREGATE_FNS = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'first', 'last', 'percentile'] as const;
export type AggregateFn = (typeof AGGREGATE_FNS)[number];

/** Functions that need a numeric field. */
export const NUMERIC_FNS: ReadonlySet<AggregateFn> = new Set(['sum', 'min', 'max', 'mean', 'stddev', 'percentile']);

export const DEFAULT_ACCURACY = 0.01;

/** One entry of `aggregations:` (config already parsed). */
export interface AggregationDef {
  fn: AggregateFn;
  field?: string;
  /** percentile: the quantile in [0, 1]. */
  p?: number;
  /** percentile: the sketch's relative accuracy (default 0.01). */
  accuracy?: number;
}

export type OutputValue = number | string | boolean | null;

/** How a slot's state is stored (stateSchema maps each to Avro). */
export type StateKind = 'long' | 'double' | 'nullable-double' | 'doubles' | 'pick' | 'sketch';

/** One kind of state. */
export interface StateSlot<S = any> {
  /** Slots with equal ids are shared. */
  readonly id: string;
  readonly state: StateKind;
  /** The input field the slot reads (undefined: the slot counts records). */
  readonly field: string | undefined;
  init(): S;
  /** Adds one record's value of `field` (undefined when the slot has no field). */
  add(s: S, v: unknown, ts: number): S;
  /** Merges `b` into `a` and returns the result; never shares `b`'s objects. */
  merge(a: S, b: S): S;
}

export interface AggregationOutput {
  name: string;
  fn: AggregateFn;
  slot: number;
  result(s: any): OutputValue;
}

export interface CompiledAggregations {
  slots: StateSlot[];
  outputs: AggregationOutput[];
}

function isValue(v: unknown): boolean {
  return v !== null && v !== undefined && (typeof v !== 'number' || Number.isFinite(v));
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

// ---------------------------------------------------------------------------------------------
// Slots

class CountRecords implements StateSlot<number> {
  readonly state = 'long';
  readonly id = 'count';
  readonly field = undefined;
  init(): number {
    return 0;
  }
  add(s: number): number {
    return s + 1;
  }
  merge(a: number, b: number): number {
    return a + b;
  }
}

class CountValues implements StateSlot<number> {
  readonly state = 'long';
  readonly id: string;
  constructor(readonly field: string) {
    this.id = `count:${field}`;
  }
  init(): number {
    return 0;
  }
  add(s: number, v: unknown): number {
    return isValue(v) ? s + 1 : s;
  }
  merge(a: number, b: number): number {
    return a + b;
  }
}

class Sum implements StateSlot<number> {
  readonly state = 'double';
  readonly id: string;
  constructor(readonly field: string) {
    this.id = `sum:${field}`;
  }
  init(): number {
    return 0;
  }
  add(s: number, v: unknown): number {
    return isFiniteNumber(v) ? s + v : s;
  }
  merge(a: number, b: number): number {
    return a + b;
  }
}

class Min implements StateSlot<number | null> {
  readonly state = 'nullable-double';
  readonly id: string;
  constructor(readonly field: string) {
    this.id = `min:${field}`;
  }
  init(): number | null {
    return null;
  }
  add(s: number | null, v: unknown): number | null {
    return isFiniteNumber(v) && (s === null || v < s) ? v : s;
  }
  merge(a: number | null, b: number | null): number | null {
    return b !== null && (a === null || b < a) ? b : a;
  }
}

class Max implements StateSlot<number | null> {
  readonly state = 'nullable-double';
  readonly id: string;
  constructor(readonly field: string) {
    this.id = `max:${field}`;
  }
  init(): number | null {
    return null;
  }
  add(s: number | null, v: unknown): number | null {
    return isFiniteNumber(v) && (s === null || v > s) ? v : s;
  }
  merge(a: number | null, b: number | null): number | null {
    return b !== null && (a === null || b > a) ? b : a;
  }
}

/** [count, sum] */
type MeanState = [number, number];

class Mean implements StateSlot<MeanState> {
  readonly state = 'doubles';
  readonly id: string;
  constructor(readonly field: string) {
    this.id = `mean:${field}`;
  }
  init(): MeanState {
    return [0, 0];
  }
  add(s: MeanState, v: unknown): MeanState {
    if (isFiniteNumber(v)) {
      s[0] += 1;
      s[1] += v;
    }
    return s;
  }
  merge(a: MeanState, b: MeanState): MeanState {
    a[0] += b[0];
    a[1] += b[1];
    return a;
  }
}

/** [count, mean, M2] (Welford). */
export type MomentsState = [number, number, number];

/** Welford's online update and Chan et al.'s parallel merge: numerically stable, mergeable. */
class Moments implements StateSlot<MomentsState> {
  readonly state = 'doubles';
  readonly id: string;
  constructor(readonly field: string) {
    this.id = `moments:${field}`;
  }
  init(): MomentsState {
    return [0, 0, 0];
  }
  add(s: MomentsState, v: unknown): MomentsState {
    if (!isFiniteNumber(v)) return s;
    const n = s[0] + 1;
    const d = v - s[1];
    const mean = s[1] + d / n;
    s[0] = n;
    s[1] = mean;
    s[2] += d * (v - mean);
    return s;
  }
  merge(a: MomentsState, b: MomentsState): MomentsState {
    const nb = b[0];
    if (nb === 0) return a;
    const na = a[0];
    if (na === 0) {
      a[0] = nb;
      a[1] = b[1];
      a[2] = b[2];
      return a;
    }
    const n = na + nb;
    const d = b[1] - a[1];
    a[0] = n;
    a[1] = a[1] + (d * nb) / n;
    a[2] = a[2] + b[2] + ((d * d * na) / n) * nb;
    return a;
  }
}

/** [event time, value] of the chosen record, or null. */
type PickState = [number, OutputValue] | null;

/** Earliest event time; ties keep the earlier arrival. */
class First implements StateSlot<PickState> {
  readonly state = 'pick';
  readonly id: string;
  constructor(readonly field: string) {
    this.id = `first:${field}`;
  }
  init(): PickState {
    return null;
  }
  add(s: PickState, v: unknown, ts: number): PickState {
    if (!isValue(v)) return s;
    if (s === null) return [ts, v as OutputValue];
    if (ts < s[0]) {
      s[0] = ts;
      s[1] = v as OutputValue;
    }
    return s;
  }
  /** `a` arrived first: ties keep `a`. */
  merge(a: PickState, b: PickState): PickState {
    if (b === null || (a !== null && b[0] >= a[0])) return a;
    return [b[0], b[1]];
  }
}

/** Latest event time; ties take the later arrival. */
class Last implements StateSlot<PickState> {
  readonly state = 'pick';
  readonly id: string;
  constructor(readonly field: string) {
    this.id = `last:${field}`;
  }
  init(): PickState {
    return null;
  }
  add(s: PickState, v: unknown, ts: number): PickState {
    if (!isValue(v)) return s;
    if (s === null) return [ts, v as OutputValue];
    if (ts >= s[0]) {
      s[0] = ts;
      s[1] = v as OutputValue;
    }
    return s;
  }
  /** `b` arrived last: ties take `b`. */
  merge(a: PickState, b: PickState): PickState {
    if (b === null || (a !== null && b[0] < a[0])) return a;
    return [b[0], b[1]];
  }
}

class Sketch implements StateSlot<SketchState> {
  readonly state = 'sketch';
  readonly id: string;
  readonly sketch: QuantileSketch;
  constructor(
    readonly field: string,
    accuracy: number,
  ) {
    this.id = `sketch:${accuracy}:${field}`;
    this.sketch = new QuantileSketch(accuracy);
  }
  init(): SketchState {
    return this.sketch.init();
  }
  add(s: SketchState, v: unknown): SketchState {
    return isFiniteNumber(v) ? this.sketch.add(s, v) : s;
  }
  merge(a: SketchState, b: SketchState): SketchState {
    return this.sketch.merge(a, b);
  }
}

// ---------------------------------------------------------------------------------------------

function slotFor(def: AggregationDef): StateSlot {
  const f = def.field;
  if (def.fn === 'count') return f === undefined ? new CountRecords() : new CountValues(f);
  if (f === undefined) throw new Error(`aggregation '${def.fn}' needs a field`);
  switch (def.fn) {
    case 'sum':
      return new Sum(f);
    case 'min':
      return new Min(f);
    case 'max':
      return new Max(f);
    case 'mean':
      return new Mean(f);
    case 'stddev':
      return new Moments(f);
    case 'first':
      return new First(f);
    case 'last':
      return new Last(f);
    case 'percentile':
      return new Sketch(f, def.accuracy ?? DEFAULT_ACCURACY);
  }
}

function resultOf(def: AggregationDef, slot: StateSlot): (s: any) => OutputValue {
  switch (def.fn) {
    case 'count':
    case 'sum':
    case 'min':
    case 'max':
      return (s: number | null) => s;
    case 'mean':
      return (s: MeanState) => (s[0] === 0 ? null : s[1] / s[0]);
    case 'stddev':
      // Population standard deviation (divides by n, not n - 1).
      return (s: MomentsState) => (s[0] === 0 ? null : Math.sqrt(s[2] / s[0]));
    case 'first':
    case 'last':
      return (s: PickState) => (s === null ? null : s[1]);
    case 'percentile': {
      const sketch = (slot as Sketch).sketch;
      const p = def.p ?? 0.5;
      return (s: SketchState) => sketch.quantile(s, p);
    }
  }
}

/** Compiles `aggregations:` (output name -> definition), sharing equal slots. */
export function compileAggregations(defs: Record<string, AggregationDef>): CompiledAggregations {
  const slots: StateSlot[] = [];
  const byId = new Map<string, number>();
  const outputs: AggregationOutput[] = [];
  for (const [name, def] of Object.entries(defs)) {
    const candidate = slotFor(def);
    let slot = byId.get(candidate.id);
    if (slot === undefined) {
      slot = slots.length;
      slots.push(candidate);
      byId.set(candidate.id, slot);
    }
    outputs.push({ name, fn: def.fn, slot, result: resultOf(def, slots[slot]!) });
  }
  return { slots, outputs };
}

/** Fresh states, one per slot. */
export function initStates(c: CompiledAggregations): unknown[] {
  const slots = c.slots;
  const out = new Array<unknown>(slots.length);
  for (let i = 0; i < slots.length; i++) out[i] = slots[i]!.init();
  return out;
}

/** Adds one record (its slot values, read once by the caller) to the states, in place. */
export function addToStates(c: CompiledAggregations, states: unknown[], values: readonly unknown[], ts: number): void {
  const slots = c.slots;
  for (let i = 0; i < slots.length; i++) states[i] = slots[i]!.add(states[i], values[i], ts);
}

/** Merges `other` into `into`, in place (`other` is left untouched and not shared). */
export function mergeStates(c: CompiledAggregations, into: unknown[], other: readonly unknown[]): void {
  const slots = c.slots;
  for (let i = 0; i < slots.length; i++) into[i] = slots[i]!.merge(into[i], other[i]);
}

// ---------------------------------------------------------------------------------------------
// Storage: the Avro schema of a window's states (one field per slot), and the conversion between
// the in-memory array and that record.

const NUMBER_OR_NULL: AvroType = ['null', 'double'];

function stateKindSchema(kind: StateKind, name: string): AvroType {
  switch (kind) {
    case 'long':
      return 'long';
    case 'double':
      return 'double';
    case 'nullable-double':
      return NUMBER_OR_NULL;
    case 'doubles':
      return { type: 'array', items: 'double' };
    case 'pick':
      return ['null', { type: 'record', name, fields: [{ name: 't', type: 'long' }, { name: 'v', type: ['null', 'boolean', 'double', 'string'] }] }];
    case 'sketch':
      return {
        type: 'record',
        name,
        fields: [
          { name: 'n', type: 'double' },
          { name: 'z', type: 'double' },
          { name: 'p', type: { type: 'map', values: 'double' } },
          { name: 'pb', type: 'int' },
          { name: 'q', type: { type: 'map', values: 'double' } },
          { name: 'qb', type: 'int' },
          { name: 'lo', type: NUMBER_OR_NULL },
          { name: 'hi', type: NUMBER_OR_NULL },
        ],
      };
  }
}

export interface StatesCodec {
  /** A record with one field per slot: s0, s1, ... */
  schema: AvroType;
  toAvro(states: readonly unknown[]): Record<string, unknown>;
  fromAvro(avro: Record<string, unknown>): unknown[];
}

/** The stored form of a window's states; `name` names the record (unique within a store's schema). */
export function statesCodec(c: CompiledAggregations, name: string): StatesCodec {
  const picks = c.slots.map((slot) => slot.state === 'pick');
  const slotToAvro = (i: number, v: unknown): unknown => (picks[i] && v !== null ? { t: (v as PickState)![0], v: (v as PickState)![1] } : v);
  // Each slot's empty state is its field's default: state written before an aggregation was added
  // reads (Avro resolution) as that aggregation's empty state, so adding one migrates open windows.
  const fields: AvroField[] = c.slots.map((slot, i) => ({ name: `s${i}`, type: stateKindSchema(slot.state, `${name}S${i}`), default: slotToAvro(i, slot.init()) }));
  const n = fields.length;
  return {
    schema: { type: 'record', name, namespace: 'vigil.state', fields },
    toAvro(states) {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        out[`s${i}`] = slotToAvro(i, states[i]);
      }
      return out;
    },
    fromAvro(avro) {
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        const v = avro[`s${i}`] as { t: number; v: OutputValue } | null;
        out[i] = picks[i] && v !== null ? [v.t, v.v] : v;
      }
      return out;
    },
  };
}
