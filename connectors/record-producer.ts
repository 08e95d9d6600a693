// Produces a few Avro records of a catalog schema to a topic (creating it when missing): what
// `vigil ack`, `vigil silence` and the running instance's /ack endpoint write.
import { randomUUID } from 'node:crypto';
import { KafkaClient } from './kafka-client.ts';
import type { RecordSchema } from '../kernel/schema.ts';
import type { AvroSerde } from '../schemas/serde.ts';

export interface ProduceRecordsOptions {
  brokers: string[];
  serde: AvroSerde;
  topic: string;
  schema: RecordSchema;
  records: Array<{ key: string; value: Record<string, unknown> }>;
  /** When the topic must be created: a compacted topic (latest value per key), else a plain one. */
  compacted?: boolean;
  partitions?: number;
}

export async function produceRecords(o: ProduceRecordsOptions): Promise<void> {
  const client = new KafkaClient({ brokers: o.brokers, clientId: 'vigil-cli' });
  const admin = client.admin();
  try {
    await admin.createTopics([{ topic: o.topic, partitions: o.partitions ?? 1, ...(o.compacted === true ? { configs: { 'cleanup.policy': 'compact' } } : {}) }]);
  } finally {
    await admin.disconnect();
  }
  const id = await o.serde.register(`${o.topic}-value`, o.schema);
  const encoded = o.records.map((r) => ({ topic: o.topic, key: r.key, value: o.serde.encode(id, r.value) }));
  const producer = client.producer();
  await producer.connect();
  try {
    await producer.send(encoded);
  } finally {
    await producer.disconnect();
  }
}

/** The ack topic `vigil ack` writes by default (a topology reads it as a source of vigil.alerting.Ack). */
export const DEFAULT_ACK_TOPIC = 'alerting.acks';
export const ACK_KINDS = ['ACK', 'NOISE', 'REVERT'] as const;
export type AckKind = (typeof ACK_KINDS)[number];

export interface AckRequest {
  target: string;
  by: string;
  comment?: string;
  kind?: AckKind;
}

/** Checks an acknowledgement's fields; returns the problem, or undefined. */
export function badAck(a: AckRequest): string | undefined {
  const printable = (s: string): boolean => !/[\u0000-\u001f\u007f]/.test(s);
  if (a.target === '' || a.target.length > 500 || !printable(a.target)) return 'the target must be an alert id, group id or group key (1 to 500 printable characters)';
  if (a.by.trim() === '' || a.by.length > 200 || !printable(a.by)) return "'by' must name who acknowledges (1 to 200 printable characters)";
  if ((a.comment ?? '').length > 2000) return 'the comment is longer than 2000 characters';
  if (a.kind !== undefined && !ACK_KINDS.includes(a.kind)) return `the kind must be one of ${ACK_KINDS.join(', ')}`;
  return undefined;
}

/** The vigil.alerting.Ack record of a request (checked: throws with the problem). */
export function ackRecord(a: AckRequest, now = Date.now()): Record<string, unknown> & { target: string } {
  const bad = badAck(a);
  if (bad !== undefined) throw new Error(bad);
  return { id: randomUUID(), target: a.target, timestamp: now, by: a.by.trim(), comment: a.comment ?? '', kind: a.kind ?? 'ACK' };
}

/** Writes one vigil.alerting.Ack record (keyed by its target) to the ack topic; returns it. */
export async function sendAck(o: Omit<ProduceRecordsOptions, 'records' | 'compacted'>, a: AckRequest, now = Date.now()): Promise<Record<string, unknown>> {
  const value = ackRecord(a, now);
  await produceRecords({ ...o, records: [{ key: a.target, value }] });
  return value;
}
