// Alert label sets: the fingerprint Prometheus and Alertmanager give the same labels.
import { describe, expect, it } from 'vitest';
import { badLabelName, fingerprint } from '../../kernel/labels.ts';

/** FNV-1a 64 with BigInt, byte by byte: the textbook definition, to check the fast one against. */
function reference(labels: Record<string, string>): string {
  const prime = 1099511628211n;
  let h = 14695981039346656037n;
  const add = (bytes: Iterable<number>): void => {
    for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * prime);
  };
  for (const name of Object.keys(labels).sort()) {
    add(Buffer.from(name, 'utf8'));
    add([0xff]);
    add(Buffer.from(labels[name]!, 'utf8'));
    add([0xff]);
  }
  return h.toString(16).padStart(16, '0');
}

describe('fingerprint', () => {
  it("gives the values of Go's hash/fnv over name, 0xff, value, 0xff in name order (model.labelSetToFingerprint)", () => {
    // Printed by a Go program using hash/fnv.New64a the way prometheus/common/model does.
    expect(fingerprint({})).toBe('cbf29ce484222325');
    expect(fingerprint({ severity: 'critical', host: 'web-1', alertname: 'HighLatency' })).toBe('19de2450ba03105c');
    expect(fingerprint({ alertname: 'DiskFull', device: '/dev/sda1', region: 'x', zone: 'ünïcödé ✓' })).toBe('7f4d000b0e294dee');
    expect(fingerprint({ b: 'bb', a: '' })).toBe('6b58836f6ec30c36');
  });

  it('agrees with a BigInt FNV-1a 64 on random label sets, ASCII and not', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const chars = 'abcXYZ_09-/ .:é✓€😀\u0000\u00ff';
    const str = (n: number): string => Array.from({ length: n }, () => [...chars][rnd([...chars].length)]).join('');
    for (let i = 0; i < 300; i++) {
      const labels: Record<string, string> = {};
      const k = rnd(6);
      for (let j = 0; j < k; j++) labels[`l${rnd(20)}_${str(rnd(3)).replace(/[^a-zA-Z0-9_]/g, '')}`] = str(rnd(40));
      expect(fingerprint(labels)).toBe(reference(labels));
    }
  });

  it('differs when a value moves between labels (the separator byte keeps them apart)', () => {
    expect(fingerprint({ a: 'bc', b: '' })).not.toBe(fingerprint({ a: 'b', b: 'c' }));
  });
});

describe('label names', () => {
  it('accepts Prometheus label names and refuses the rest and the reserved __ prefix', () => {
    expect(badLabelName('host')).toBeUndefined();
    expect(badLabelName('_x9')).toBeUndefined();
    expect(badLabelName('9x')).toMatch(/not a label name/);
    expect(badLabelName('a-b')).toMatch(/not a label name/);
    expect(badLabelName('__name__')).toMatch(/reserved/);
  });
});
