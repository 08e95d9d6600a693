import { describe, expect, it } from 'vitest';
import {
  InvalidAvroSchemaError,
  checkCompatibility,
  parseCompatibilityLevel,
  parseSchemaJson,
  parseSchemaText,
} from '../../../schemas/registry/avro-schema.ts';
import type { CompatibilityLevel, PriorSchema } from '../../../schemas/registry/avro-schema.ts';

const base = {
  type: 'record',
  name: 'Reading',
  namespace: 'acme',
  doc: 'A reading.',
  fields: [
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'level', type: { type: 'enum', name: 'Level', symbols: ['LOW', 'HIGH', 'UNKNOWN'], default: 'UNKNOWN' } },
    { name: 'previous', type: ['null', 'Level'], default: null },
    { name: 'tags', type: { type: 'map', values: { type: 'string' } }, default: { b: '2', a: '1' } },
  ],
};

describe('canonical form', () => {
  it('ignores whitespace, key order and namespace spelling', () => {
    const a = parseSchemaText(JSON.stringify(base));
    const b = parseSchemaText(JSON.stringify(base, null, 2));
    const reordered = {
      fields: [
        { type: { logicalType: 'timestamp-millis', type: 'long' }, name: 'at' },
        { name: 'level', type: { symbols: ['LOW', 'HIGH', 'UNKNOWN'], default: 'UNKNOWN', name: 'acme.Level', type: 'enum' } },
        { default: null, name: 'previous', type: ['null', 'acme.Level'] },
        { name: 'tags', default: { a: '1', b: '2' }, type: { values: 'string', type: 'map' } },
      ],
      doc: 'A reading.',
      name: 'acme.Reading',
      type: 'record',
    };
    const c = parseSchemaJson(reordered);
    expect(b.canonical).toBe(a.canonical);
    expect(c.canonical).toBe(a.canonical);
    expect(JSON.parse(a.canonical)).toEqual({
      type: 'record',
      name: 'acme.Reading',
      doc: 'A reading.',
      fields: [
        { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'level', type: { type: 'enum', name: 'acme.Level', symbols: ['LOW', 'HIGH', 'UNKNOWN'], default: 'UNKNOWN' } },
        { name: 'previous', type: ['null', 'acme.Level'], default: null },
        { name: 'tags', type: { type: 'map', values: 'string' }, default: { a: '1', b: '2' } },
      ],
    });
  });

  it('keeps what changes meaning or documentation: defaults, docs, logical types, enum defaults', () => {
    const a = parseSchemaJson(base).canonical;
    const variants = [
      { ...base, doc: 'Another doc.' },
      { ...base, fields: [{ ...base.fields[0], type: 'long' }, ...base.fields.slice(1)] },
      { ...base, fields: [...base.fields.slice(0, 3), { ...base.fields[3], default: {} }] },
      {
        ...base,
        fields: [base.fields[0], { name: 'level', type: { type: 'enum', name: 'Level', symbols: ['LOW', 'HIGH', 'UNKNOWN'] } }, ...base.fields.slice(2)],
      },
    ];
    for (const v of variants) expect(parseSchemaJson(v).canonical).not.toBe(a);
  });

  it('accepts primitives and writes {"type": "string"} as "string"', () => {
    expect(parseSchemaText('"string"').canonical).toBe('"string"');
    expect(parseSchemaText('{"type": "string"}').canonical).toBe('"string"');
    expect(parseSchemaText('string').canonical).toBe('"string"');
  });

  it('refuses invalid schemas with the avsc reason', () => {
    expect(() => parseSchemaText('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}')).toThrowError(
      InvalidAvroSchemaError,
    );
    expect(() => parseSchemaText('{not json')).toThrowError(/Invalid schema: not JSON/);
    expect(() => parseSchemaJson({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'int', default: 'x' }] })).toThrowError(
      /incompatible field default/,
    );
  });
});

describe('compatibility', () => {
  const v = (fields: unknown[]) => parseSchemaJson({ type: 'record', name: 'R', fields }).type;
  const a = v([{ name: 'a', type: 'int' }]);
  const withDefault = v([{ name: 'a', type: 'int' }, { name: 'b', type: 'string', default: '' }]);
  const withRequired = v([{ name: 'a', type: 'int' }, { name: 'b', type: 'string' }]);
  const dropped = v([{ name: 'b', type: 'string', default: '' }]);
  const prior = (...types: ReturnType<typeof v>[]): PriorSchema[] => types.map((type, i) => ({ version: i + 1, id: 10 + i, type }));
  const ok = (level: CompatibilityLevel, next: ReturnType<typeof v>, ...before: ReturnType<typeof v>[]) =>
    checkCompatibility(level, next, prior(...before)).length === 0;

  it('BACKWARD: the new schema must read the latest data', () => {
    expect(ok('BACKWARD', withDefault, a)).toBe(true);
    expect(ok('BACKWARD', withRequired, a)).toBe(false);
    expect(ok('BACKWARD', a, withRequired)).toBe(true); // removing a field is backward compatible
    expect(checkCompatibility('BACKWARD', withRequired, prior(a))[0]).toMatch(
      /BACKWARD: the new schema cannot read data written with version 1 \(id 10\): no matching field for default-less R\.b/,
    );
  });

  it('FORWARD: the latest schema must read the new data', () => {
    expect(ok('FORWARD', withRequired, a)).toBe(true); // adding a field: old readers ignore it
    expect(ok('FORWARD', a, withRequired)).toBe(false); // removing a required field
    expect(ok('FORWARD', a, withDefault)).toBe(true);
  });

  it('FULL: both directions', () => {
    expect(ok('FULL', withDefault, a)).toBe(true);
    expect(ok('FULL', withRequired, a)).toBe(false);
    expect(ok('FULL', a, withRequired)).toBe(false);
  });

  it('TRANSITIVE variants check every prior version, the others only the latest', () => {
    // History: v1 {a}, v2 {b=""}. Candidate: {b} (b required).
    const onlyB = v([{ name: 'b', type: 'string' }]);
    // It reads v2 data (b present) but not v1 data (no b, no default).
    expect(ok('BACKWARD', onlyB, a, dropped)).toBe(true);
    expect(ok('BACKWARD_TRANSITIVE', onlyB, a, dropped)).toBe(false);
    // v2 reads its data (b present); v1 cannot (no a, no default).
    expect(ok('FORWARD', onlyB, a, dropped)).toBe(true);
    expect(ok('FORWARD_TRANSITIVE', onlyB, a, dropped)).toBe(false);
    expect(ok('FULL', onlyB, a, dropped)).toBe(true);
    expect(ok('FULL_TRANSITIVE', onlyB, a, dropped)).toBe(false);
    expect(ok('FULL_TRANSITIVE', withDefault, a, withDefault)).toBe(true);
    expect(ok('FULL_TRANSITIVE', withRequired, withDefault, a)).toBe(false);
  });

  it('NONE allows anything; a first version is always compatible', () => {
    const other = parseSchemaJson('string').type;
    expect(ok('NONE', other, a)).toBe(true);
    expect(ok('FULL_TRANSITIVE', other)).toBe(true);
  });

  it('parses levels case-insensitively', () => {
    expect(parseCompatibilityLevel('full_transitive')).toBe('FULL_TRANSITIVE');
    expect(parseCompatibilityLevel('bogus')).toBeUndefined();
    expect(parseCompatibilityLevel(3)).toBeUndefined();
  });
});
