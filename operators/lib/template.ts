// Text templates of topology files: literal text with `{expression}` placeholders, each an
// expression of the expression language over the operator's input record (a URL to call, an
// alert's summary). Parsed and type-checked once, rendered per record.
import type { ConfigIssue, RecordSchema } from '../../kernel/operator.ts';
import { compileExpressionAt } from '../../kernel/expr.ts';
import { describeTy, isScalar, nonNull } from '../../kernel/avro-types.ts';

type Ev = (v: Record<string, unknown>) => unknown;

export interface Template {
  /** The literal text around the placeholders: one more part than slots. */
  parts: string[];
  slots: Array<{ ev: Ev; src: string }>;
  /** Input fields the placeholders read (dotted paths). */
  fields: string[];
}

/**
 * Parses `t`; problems go to `issues` at `path` with the offset of the character in the string.
 * `what` names the template in messages ("the URL template", "annotation 'summary'").
 */
export function parseTemplate(t: string, input: RecordSchema, path: (string | number)[], what: string, issues: ConfigIssue[]): Template | undefined {
  const parts: string[] = [];
  const slots: Template['slots'] = [];
  const fields = new Set<string>();
  let i = 0;
  let lit = '';
  while (i < t.length) {
    const c = t[i]!;
    if (c === '}') {
      issues.push({ path, offset: i, message: `unmatched '}' in ${what} (placeholders are {expression})` });
      return undefined;
    }
    if (c !== '{') {
      lit += c;
      i++;
      continue;
    }
    const close = t.indexOf('}', i);
    if (close < 0) {
      issues.push({ path, offset: i, message: `unterminated '{' in ${what}` });
      return undefined;
    }
    const src = t.slice(i + 1, close);
    const before = issues.length;
    const c2 = compileExpressionAt(src, input, path, issues);
    for (let k = before; k < issues.length; k++) issues[k] = { ...issues[k]!, offset: (issues[k]!.offset ?? 0) + i + 1 };
    if (c2 === undefined) return undefined;
    if (!isScalar(nonNull(c2.ty))) {
      issues.push({ path, offset: i + 1, code: 'EXPR_TYPE', message: `a placeholder of ${what} must be a string, number or boolean, but '${src}' is ${describeTy(c2.ty)}` });
      return undefined;
    }
    for (const f of c2.fields) fields.add(f);
    parts.push(lit);
    lit = '';
    slots.push({ ev: c2.evaluate, src });
    i = close + 1;
  }
  parts.push(lit);
  return { parts, slots, fields: [...fields] };
}

/** A placeholder that evaluated to null where the template cannot do without it. */
export class TemplateError extends Error {}

/**
 * Fills the template from a record. Each value goes through `encode` (e.g. encodeURIComponent);
 * a null value throws a TemplateError naming the placeholder, unless `nullAs` is given.
 */
export function renderTemplate(t: Template, v: Record<string, unknown>, encode: (s: string) => string = (s) => s, nullAs?: string): string {
  let out = t.parts[0]!;
  for (let i = 0; i < t.slots.length; i++) {
    const x = t.slots[i]!.ev(v);
    let s: string;
    if (x === null || x === undefined) {
      if (nullAs === undefined) throw new TemplateError(`the placeholder {${t.slots[i]!.src}} is null`);
      s = nullAs;
    } else s = encode(String(x));
    out += s + t.parts[i + 1]!;
  }
  return out;
}
