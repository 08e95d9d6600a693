// Runs every topology test file of the repository (*.test.yaml), one vitest test per test case,
// exactly as `vigil test` does.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { operatorRegistry } from '../../operators/registry.ts';
import { readTopologyTestFile } from '../../runtime/topology-tests.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SKIP = new Set(['node_modules', '.cache', '.git', '.vigil', 'bench']);

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    if (SKIP.has(e)) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (e.endsWith('.test.yaml') && !e.endsWith('.fails.test.yaml')) out.push(p);
  }
  return out.sort();
}

const files = testFiles(ROOT);

describe('topology test files', () => {
  it('exist', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  for (const file of files) {
    const f = readTopologyTestFile(file, { operators: operatorRegistry });
    describe(relative(ROOT, file), () => {
      if (f.broken !== undefined) {
        it(f.broken.name, () => {
          throw new Error(f.broken!.failure);
        });
        return;
      }
      f.names.forEach((name, i) =>
        it(name, async () => {
          const r = await f.run(i);
          if (!r.ok) throw new Error(r.failure);
        }),
      );
    });
  }
});
