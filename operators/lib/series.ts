// Per-series operators (detect, predict): a series is the records with the same `key` values; the
// input is partitioned by them, and every output stays keyed as the input.
import type { CompileInput, FieldSpec, OutputDecl, RecordSchema } from '../../kernel/operator.ts';
import { DEFAULT_INPUT } from '../../kernel/operator.ts';
import { keyOfRecord, splitPaths } from '../../kernel/keys.ts';

/** The `key` config field of a per-series operator. */
export const SERIES_KEY_SPEC: FieldSpec = {
  kind: 'array',
  optional: true,
  items: { kind: 'field', description: 'An input field.' },
  description: "Fields whose values identify a series (the input is partitioned by them). Default: the input's key fields; with none, the whole stream is one series.",
  examples: [['host', 'name']],
};

export interface SeriesKeying {
  /** The key fields (empty: the whole stream is one series). */
  fields: string[];
  /** The outputs, each with the given schema, keyed as the series are. */
  outputs(names: readonly string[], schema: RecordSchema): OutputDecl[];
  /** For CompiledOperator: the partitioning the series need. */
  partitionBy: { partitionBy?: Record<string, string[]> };
  /** The series of a record ('' when the whole stream is one series; a null key is a series too). */
  seriesOf: (value: Record<string, unknown>) => string;
}

export function seriesKeying(key: string[] | undefined, input: CompileInput): SeriesKeying {
  const fields = key ?? (input.keyFields !== undefined ? [...input.keyFields] : []);
  const keyFields = fields.length > 0 ? fields : input.keyFields;
  const paths = splitPaths(fields);
  return {
    fields,
    outputs: (names, schema) => names.map((name) => ({ name, schema, ...(keyFields !== undefined ? { keyFields } : {}) })),
    partitionBy: fields.length > 0 ? { partitionBy: { [DEFAULT_INPUT]: fields } } : {},
    seriesOf: paths.length === 0 ? () => '' : (value) => keyOfRecord(value, paths) ?? '',
  };
}
