// Regular expressions from topology files and topics (matches(), label matchers, silences) run on
// RE2 (re2js, a pure-JS port): linear time in the input, so no pattern can make a record or a
// load take exponential time (ReDoS). RE2 has no backreferences and no lookaround; patterns using
// them are refused with RE2's reason. It is also Alertmanager's and Prometheus' regex dialect.
import { RE2JS } from 're2js';

export interface LinearRegex {
  /** Whether the pattern matches somewhere in `s` (searched, not anchored). */
  test(s: string): boolean;
}

/** Compiles a pattern with flags i (ignore case), m (multi-line), s (dot matches newline); throws with the reason. */
export function linearRegex(pattern: string, flags = ''): LinearRegex {
  let f = 0;
  if (flags.includes('i')) f |= RE2JS.CASE_INSENSITIVE;
  if (flags.includes('m')) f |= RE2JS.MULTILINE;
  if (flags.includes('s')) f |= RE2JS.DOTALL;
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, f);
  } catch (e) {
    throw new Error((e as Error).message.replace(/^error parsing regexp: /i, ''));
  }
  return { test: (s) => re.matcher(s).find() };
}
