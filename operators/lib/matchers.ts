// Label matchers in Alertmanager's syntax (routes, inhibition rules, silences): `name="value"`,
// `name!="value"`, `name=~"regex"`, `name!~"regex"`; the value may be unquoted. A label an alert does
// not have matches as the empty string, and regular expressions are anchored at both ends, as in
// Alertmanager.
import type { LabelSet } from '../../kernel/labels.ts';
import { linearRegex } from '../../kernel/regex.ts';
import type { LinearRegex } from '../../kernel/regex.ts';

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  name: string;
  op: MatchOp;
  value: string;
  re?: LinearRegex;
}

/** Longest value a matcher may hold (a regular expression included). */
export const MAX_MATCHER_VALUE = 1024;

const MATCHER = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/s;

/** Parses one matcher; throws an Error saying what is wrong. */
export function parseMatcher(src: string): Matcher {
  const m = MATCHER.exec(src);
  if (m === null) throw new Error(`'${short(src)}' is not a matcher: name="value", name!="value", name=~"regex" or name!~"regex"`);
  const [, name, op, raw] = m as unknown as [string, string, MatchOp, string];
  let value = raw;
  if (raw.startsWith('"')) {
    if (raw.length < 2 || !raw.endsWith('"')) throw new Error(`the value of matcher '${short(src)}' has no closing quote`);
    try {
      value = JSON.parse(raw) as string;
    } catch {
      throw new Error(`the value of matcher '${short(src)}' is not a valid quoted string`);
    }
  } else if (/["{},]/.test(raw) || /^[=~]/.test(raw)) throw new Error(`the value of matcher '${short(src)}' must be quoted`);
  if (value.length > MAX_MATCHER_VALUE) throw new Error(`the value of matcher '${name}' is longer than ${MAX_MATCHER_VALUE} characters`);
  if (op === '=~' || op === '!~') {
    try {
      // RE2, as Alertmanager's: linear time, whatever a silence from a topic holds.
      return { name, op, value, re: linearRegex(`^(?:${value})$`, 's') };
    } catch (e) {
      throw new Error(`matcher '${short(src)}': invalid regular expression: ${(e as Error).message}`);
    }
  }
  return { name, op, value };
}

function short(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export function matches(m: Matcher, labels: LabelSet): boolean {
  const v = labels[m.name] ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return m.re!.test(v);
    case '!~':
      return !m.re!.test(v);
  }
}

/** Whether every matcher matches (an empty list matches everything). */
export function matchesAll(ms: readonly Matcher[], labels: LabelSet): boolean {
  for (const m of ms) if (!matches(m, labels)) return false;
  return true;
}

/** `{a="1", b=~"x.*"}`: the form Alertmanager shows matchers and label sets in (group keys). */
export function formatMatchers(ms: readonly Pick<Matcher, 'name' | 'op' | 'value'>[]): string {
  return `{${ms.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(', ')}}`;
}

/** A label set in the same form, names sorted. */
export function formatLabels(labels: LabelSet): string {
  return formatMatchers(Object.keys(labels).sort().map((name) => ({ name, op: '=' as const, value: labels[name]! })));
}
