// The folders form layers: each imports only from itself and the layers below it (DESIGN.md: the
// kernel at the bottom, the command line at the top). A new import that points up fails here.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Lowest first. */
const LAYERS = ['kernel', 'schemas', 'connectors', 'topology', 'operators', 'runtime', 'bench', 'cli'] as const;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function layerOf(file: string): number {
  return LAYERS.indexOf(relative(ROOT, file).split(sep)[0] as (typeof LAYERS)[number]);
}

describe('folder layers', () => {
  it('no folder imports from a folder above it', () => {
    const wrong: string[] = [];
    for (const layer of LAYERS)
      for (const file of tsFiles(join(ROOT, layer))) {
        const src = readFileSync(file, 'utf8');
        for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g)) {
          const target = resolve(file, '..', m[1]!);
          const to = layerOf(target);
          if (to > layerOf(file)) wrong.push(`${relative(ROOT, file)} imports ${relative(ROOT, target)} (${LAYERS[to]} is above ${layer})`);
        }
      }
    expect(wrong).toEqual([]);
  });

  it('operators never import kafkajs or avsc', () => {
    const wrong = tsFiles(join(ROOT, 'operators')).filter((f) => /from '(kafkajs|avsc)'/.test(readFileSync(f, 'utf8')));
    expect(wrong.map((f) => relative(ROOT, f))).toEqual([]);
  });
});
