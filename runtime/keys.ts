// The Kafka key a sink writes: the record's key, or one derived from fields of the written value
// in the key format of kernel/keys.ts.
import type { StreamRecord } from '../kernel/record.ts';
import { keyOfRecord, splitPaths } from '../kernel/keys.ts';
import type { PlanSink } from '../topology/types.ts';

const paths = new WeakMap<PlanSink, string[][]>();

export function sinkKey(sink: PlanSink, record: StreamRecord): string | null {
  let p = paths.get(sink);
  if (p === undefined) {
    const fields = sink.keyFields ?? (sink.keyField !== undefined ? [sink.keyField] : []);
    paths.set(sink, (p = splitPaths(fields)));
  }
  if (p.length === 0) return record.key;
  return keyOfRecord(record.value, p);
}
