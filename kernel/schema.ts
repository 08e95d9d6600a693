// Avro schema JSON, as written in .avsc files: the shape every layer passes schemas around in.

export interface AvroField {
  name: string;
  type: AvroType;
  doc?: string;
  default?: unknown;
}

export type AvroType =
  | string
  | AvroType[]
  | { type: 'record'; name: string; namespace?: string; doc?: string; fields: AvroField[] }
  | { type: 'enum'; name: string; namespace?: string; symbols: string[]; default?: string }
  | { type: 'array'; items: AvroType }
  | { type: 'map'; values: AvroType }
  | { type: string; logicalType?: string; [k: string]: unknown };

export interface RecordSchema {
  type: 'record';
  name: string;
  namespace?: string;
  doc?: string;
  fields: AvroField[];
}
