// Pieces several operators share: output field names, fields computed by expressions over a view
// of the records (a join's `left` and `right`, an HTTP answer beside its record), the stored form
// of a record an operator holds, and what happens to a record that comes too late.
import type { CompileContext, ConfigIssue, OperatorContext } from '../../kernel/operator.ts';
import { suggestion } from '../../kernel/diagnostics.ts';
import type { AvroField, AvroType, RecordSchema } from '../../kernel/schema.ts';
import type { Ty } from '../../kernel/avro-types.ts';
import { stripConsts } from '../../kernel/avro-types.ts';
import { compileExpressionAt } from '../../kernel/expr.ts';
import { isoOrRaw } from './windows.ts';

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether `name` is a valid Avro name (letters, digits and _, not starting with a digit). */
export function isAvroName(name: string): boolean {
  return AVRO_NAME.test(name);
}

/** The issue of an output field name that is not a valid Avro name (at its key), if it is not. */
export function badFieldName(name: string, path: (string | number)[]): ConfigIssue | undefined {
  if (AVRO_NAME.test(name)) return undefined;
  return { path, at: 'key', code: 'INVALID_VALUE', message: `output field name '${name}' is not a valid Avro name (letters, digits and _, not starting with a digit)` };
}

export interface ComputedField {
  name: string;
  ty: Ty;
  ev: (v: Record<string, unknown>) => unknown;
}

/**
 * Output fields computed by expressions over `view` (`fields:` of join, sequence, lookup, enrich):
 * names checked, expressions compiled; problems go to `issues` at `fields.<name>`. `taken` says why
 * a name cannot be used (it is already a field of the output), if it cannot.
 */
export function computedFields(
  fields: Record<string, string>,
  view: RecordSchema,
  issues: ConfigIssue[],
  taken?: (name: string) => string | undefined,
): ComputedField[] {
  const out: ComputedField[] = [];
  for (const [name, src] of Object.entries(fields)) {
    const bad = badFieldName(name, ['fields', name]);
    if (bad !== undefined) {
      issues.push(bad);
      continue;
    }
    const why = taken?.(name);
    if (why !== undefined) {
      issues.push({ path: ['fields', name], at: 'key', message: why });
      continue;
    }
    const c = compileExpressionAt(src, view, ['fields', name], issues);
    if (c !== undefined) out.push({ name, ty: stripConsts(c.ty), ev: c.evaluate });
  }
  return out;
}

/** Evaluates computed fields over a view into a new record value. */
export function evaluateFields(fields: readonly ComputedField[], view: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) out[fields[i]!.name] = fields[i]!.ev(view);
  return out;
}

/** A record an operator holds in a store: its key, value (the input's schema), headers, and `extra` fields. */
export interface HeldRecord {
  key: string | null;
  value: Record<string, unknown>;
  headers: Record<string, string> | null;
}

/** The Avro schema of a held record (named `vigil.state.<name>`). */
export function heldRecordSchema(name: string, input: RecordSchema, extra: AvroField[] = []): AvroType {
  return {
    type: 'record',
    name,
    namespace: 'vigil.state',
    fields: [
      { name: 'key', type: ['null', 'string'] },
      { name: 'value', type: input as unknown as AvroType },
      { name: 'headers', type: ['null', { type: 'map', values: 'string' }] },
      ...extra,
    ],
  };
}

/**
 * Whether a record is late: the watermark has passed its time plus the grace. A late record is
 * counted (`late`) and dead-lettered with reason `late`.
 */
export function isLate(ctx: OperatorContext, what: string, t: number, grace: number): boolean {
  const wm = ctx.watermark();
  if (t + grace >= wm) return false;
  ctx.count('late');
  ctx.deadLetter('late', `${what} at ${t} (${isoOrRaw(t)}) is late: the watermark ${wm} is past its time plus grace ${grace}ms`);
  return true;
}

/** The issue of a config field naming a table source the topology does not have. */
export function unknownTable(ctx: CompileContext, name: string, path: (string | number)[]): ConfigIssue {
  const names = ctx.tableNames();
  const hint = suggestion(name, names) + (names.length === 0 ? ' (declare one with table: true)' : ` (tables: ${names.join(', ')})`);
  return { path, code: 'UNKNOWN_INPUT', message: `'${name}' is not a table source${hint}` };
}
