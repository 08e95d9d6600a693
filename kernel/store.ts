// State as operators see it. The runtime owns the stores' lifecycle, their changelog topics and
// restore; an operator only declares them (CompiledOperator.stores) and reads and writes them
// through the context. A store kind is registered by name in the runtime (runtime/stores/) and
// declares what its values are encoded as: the Avro schema of StoreDecl.value, in binary, both in
// the changelog and in every size figure. Keys are strings.
import type { AvroType } from './schema.ts';

/** Store kinds the runtime provides (runtime/stores/kinds.ts registers one implementation each). */
export const STORE_KINDS = ['kv', 'window', 'buffer'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export interface StoreDecl {
  /** Unique within the operator; the runtime scopes it by topology, operator and partition. */
  name: string;
  kind: StoreKind;
  /** Avro schema of one value: the changelog's value format. */
  value: AvroType;
  /**
   * When the in-memory value is not avsc's representation of `value` (e.g. an array kept for speed
   * where the schema has a record): converts one way for the changelog and back on restore.
   */
  codec?: { toAvro(value: unknown): unknown; fromAvro(avro: unknown): unknown };
  /**
   * window and buffer stores: entries older than this (ms) behind the operator's watermark are
   * dropped by the store (a window by its start, a buffer entry by its time). kv stores keep
   * entries until deleted and take no retention.
   */
  retentionMs?: number;
  /**
   * What the values mean beyond their schema, in order (e.g. a window's shape and an aggregation's
   * state slots). Part of the store's state-layout fingerprint: on start, state written under
   * another layout is refused, unless the old layout is a prefix of this one and the schema reads
   * the old values (Avro resolution, new fields with defaults): then it migrates.
   */
  layout?: readonly string[];
}

/** Key-value store. `prefix` and `range` iterate in ascending key order (UTF-16 code units). */
export interface KeyValueStore<V> {
  get(key: string): V | undefined;
  put(key: string, value: V): void;
  delete(key: string): void;
  has(key: string): boolean;
  /** Every entry, in insertion order. */
  entries(): IterableIterator<[string, V]>;
  /** Entries whose key starts with `prefix`, ascending by key. */
  prefix(prefix: string): Array<[string, V]>;
  /** Entries with from <= key < to, ascending by key. */
  range(from: string, to: string): Array<[string, V]>;
  readonly size: number;
}

/** One value per key and window start; retention counts from the window start. */
export interface WindowStore<V> {
  get(key: string, windowStart: number): V | undefined;
  put(key: string, windowStart: number, value: V): void;
  delete(key: string, windowStart: number): void;
  /** Windows of one key whose start lies in [from, to], ascending by start. */
  fetch(key: string, from: number, to: number): Array<[number, V]>;
  /** Every (key, windowStart, value), ascending by window start. */
  all(): Array<[string, number, V]>;
  readonly size: number;
}

/** An entry of a buffer store: `seq` tells apart entries of one key at the same time. */
export interface BufferEntry<V> {
  key: string;
  time: number;
  seq: number;
  value: V;
}

/**
 * Time-ordered buffer: many values per key, each at a time (a join's or a sequence's pending
 * records). Range reads per key and time; scans in time order over all keys (for sweeps as the
 * watermark passes); retention counts from each entry's time.
 */
export interface BufferStore<V> {
  /** Adds a value; returns its entry (with the seq that identifies it among equal times). */
  add(key: string, time: number, value: V): BufferEntry<V>;
  /** Replaces the value of an existing entry. */
  update(entry: BufferEntry<V>, value: V): void;
  remove(entry: BufferEntry<V>): void;
  /** Entries of `key` with from <= time <= to, ascending by time then seq. */
  fetch(key: string, from: number, to: number): BufferEntry<V>[];
  /**
   * Removes and returns the entries of every key with time <= upTo, ascending by time then key
   * then seq (a sweep as the watermark passes them).
   */
  takeUntil(upTo: number): BufferEntry<V>[];
  /** The earliest time held, or undefined when empty. */
  earliest(): number | undefined;
  readonly size: number;
}

/** The store interface of each kind, for OperatorContext.store(). */
export interface StoreOfKind<V> {
  kv: KeyValueStore<V>;
  window: WindowStore<V>;
  buffer: BufferStore<V>;
}

/** A table source as an operator reads it: the latest value per Kafka key (tombstones delete). */
export interface TableView<V = Record<string, unknown>> {
  get(key: string): V | undefined;
  /** Every row (partitioned tables: the rows of this task's partition). */
  entries(): IterableIterator<[string, V]>;
  readonly size: number;
}
