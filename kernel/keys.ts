// The record key format: how a key is made from field values. Sinks keyed by fields, repartition
// topics and operators that key their output by fields (aggregate, join, ...) all use these two
// functions, so records keyed by the same values get the same key bytes and land on the same
// partition (Kafka's partitioner hashes the key bytes).
//
// - one field: its value as a string (numbers in JavaScript's shortest form, booleans as
//   true/false); null when the value is null or absent, so the record has no key;
// - several fields: the JSON array of their values, e.g. ["web-1","cpu.user"] (null for absent).

/** A field's value by dotted path (own properties only); undefined when absent. */
export function readPath(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (let i = 0; i < path.length; i++) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, path[i]!)) return undefined;
    v = (v as Record<string, unknown>)[path[i]!];
  }
  return v;
}

/** The key of a record keyed by these field values (see the format above). */
export function keyOf(values: readonly unknown[]): string | null {
  if (values.length === 1) {
    const v = values[0];
    return v === undefined || v === null ? null : String(v);
  }
  const out = new Array<unknown>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] ?? null;
  return JSON.stringify(out);
}

/** The key of a record from its value and dotted field paths (pre-split with splitPaths). */
export function keyOfRecord(value: unknown, paths: readonly (readonly string[])[]): string | null {
  if (paths.length === 1) return keyOf([readPath(value, paths[0]!)]);
  return keyOf(paths.map((p) => readPath(value, p)));
}

export function splitPaths(fields: readonly string[]): string[][] {
  return fields.map((f) => f.split('.'));
}
