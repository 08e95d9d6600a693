// The Kafka key a sink writes: the record's key, or one derived from fields of the written value.
import type { StreamRecord } from '../operators/types.ts';
import type { PlanSink } from '../topology/types.ts';

function field(value: unknown, path: string): unknown {
  let v = value;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * One key field: its value as a string (null when absent). Several (a repartition by a composite
 * group): the JSON array of their values, the same form the aggregate operator keys its output by.
 */
export function sinkKey(sink: PlanSink, record: StreamRecord): string | null {
  const fields = sink.keyFields ?? (sink.keyField !== undefined ? [sink.keyField] : undefined);
  if (!fields || fields.length === 0) return record.key;
  if (fields.length === 1) {
    const v = field(record.value, fields[0]!);
    return v === undefined || v === null ? null : String(v);
  }
  return JSON.stringify(fields.map((f) => field(record.value, f) ?? null));
}
