// The record that flows between sources, operators and sinks.

/** A decoded record. `value` is the Avro record as a plain object (avsc's representation). */
export interface StreamRecord {
  key: string | null;
  value: Record<string, unknown>;
  /** Event time in epoch milliseconds (from the source's timestamp field or the Kafka timestamp). */
  timestamp: number;
  /** Kafka headers, carried from input to output unless an operator replaces them. */
  headers?: Record<string, string>;
}
