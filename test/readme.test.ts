// The topology examples in the README must stay valid: each ```yaml block that declares a
// topology (version: 1) is loaded and planned like a real file.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseTopology } from '../topology/loader.ts';
import { operatorRegistry } from '../operators/registry.ts';
import { planTopology } from '../topology/plan.ts';

const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => /^version: 1$/m.test(b));

describe('README topology examples', () => {
  it('has at least one', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });
  it.each(blocks.map((b, i) => [i + 1, b] as const))('example %i loads and plans', (_i, yaml) => {
    const plan = planTopology(parseTopology(yaml, 'README.md', { operators: operatorRegistry }));
    expect(plan.subtopologies.length).toBeGreaterThan(0);
  });
});
