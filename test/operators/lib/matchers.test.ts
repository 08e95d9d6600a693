// Label matchers in Alertmanager's syntax.
import { describe, expect, it } from 'vitest';
import { formatLabels, formatMatchers, matches, parseMatcher } from '../../../operators/lib/matchers.ts';

describe('matchers', () => {
  it('parse the four operators, quoted and unquoted values, and match a missing label as empty', () => {
    const m = (s: string, labels: Record<string, string>) => matches(parseMatcher(s), labels);
    expect(m('severity="critical"', { severity: 'critical' })).toBe(true);
    expect(m('severity = critical', { severity: 'critical' })).toBe(true);
    expect(m('severity!="critical"', { severity: 'warning' })).toBe(true);
    expect(m('severity!="critical"', {})).toBe(true);
    expect(m('team=""', {})).toBe(true);
    expect(m('team=~"db|storage"', { team: 'storage' })).toBe(true);
    // anchored at both ends, as in Alertmanager
    expect(m('team=~"db"', { team: 'dba' })).toBe(false);
    expect(m('team!~"db.*"', { team: 'dba' })).toBe(false);
    expect(m('msg=~".*down.*"', { msg: 'line1\nis down' })).toBe(true);
    expect(m('name="say \\"hi\\""', { name: 'say "hi"' })).toBe(true);
  });

  it('refuse what is not a matcher, saying why', () => {
    expect(() => parseMatcher('severity')).toThrow(/is not a matcher/);
    expect(() => parseMatcher('9x="a"')).toThrow(/is not a matcher/);
    expect(() => parseMatcher('a="b')).toThrow(/no closing quote/);
    expect(() => parseMatcher('a=b,c')).toThrow(/must be quoted/);
    expect(() => parseMatcher('a==b')).toThrow(/must be quoted/);
    expect(() => parseMatcher('a=~"("')).toThrow(/invalid regular expression/);
    expect(() => parseMatcher(`a="${'x'.repeat(2000)}"`)).toThrow(/longer than 1024/);
  });

  it("format as Alertmanager shows group keys", () => {
    expect(formatLabels({ host: 'a', alertname: 'X' })).toBe('{alertname="X", host="a"}');
    expect(formatMatchers([parseMatcher('team=~"db|x"')])).toBe('{team=~"db|x"}');
  });
});
