// Dead-letter records: the original bytes, untouched, with headers that say what failed, where,
// and which input record it was. Nothing that fails is dropped silently.
import type { OutRecord } from '../connectors/kafka-client.ts';
import type { DeadLetter } from './task.ts';
import { redactText } from '../kernel/redact.ts';

export const DLQ_HEADERS = {
  stage: 'vigil.error.stage',
  reason: 'vigil.error.reason',
  message: 'vigil.error.message',
  node: 'vigil.error.node',
  topology: 'vigil.topology',
  topic: 'vigil.source.topic',
  partition: 'vigil.source.partition',
  offset: 'vigil.source.offset',
  timestamp: 'vigil.source.timestamp',
  /** 'original' = value holds the input record's bytes; 'json' = the decoded record as JSON. */
  payload: 'vigil.payload',
} as const;

export function deadLetterRecord(topic: string, topology: string, dl: DeadLetter): OutRecord {
  const headers: Record<string, string> = { ...(dl.input?.headers ?? {}) };
  headers[DLQ_HEADERS.stage] = dl.stage;
  headers[DLQ_HEADERS.reason] = dl.reason;
  if (dl.detail) headers[DLQ_HEADERS.message] = redactText(dl.detail).slice(0, 4000);
  if (dl.node) headers[DLQ_HEADERS.node] = dl.node;
  headers[DLQ_HEADERS.topology] = topology;
  if (dl.input) {
    headers[DLQ_HEADERS.topic] = dl.input.topic;
    headers[DLQ_HEADERS.partition] = String(dl.input.partition);
    headers[DLQ_HEADERS.offset] = dl.input.offset;
    headers[DLQ_HEADERS.timestamp] = String(dl.input.timestamp);
    headers[DLQ_HEADERS.payload] = 'original';
    return { topic, key: dl.input.key, value: dl.input.value, headers };
  }
  headers[DLQ_HEADERS.payload] = 'json';
  const value = dl.record ? Buffer.from(JSON.stringify({ key: dl.record.key, timestamp: dl.record.timestamp, value: dl.record.value })) : null;
  return { topic, key: dl.record?.key ?? null, value, headers };
}
