import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { operatorDefinitions, operatorRegistry } from '../../operators/registry.ts';
import { sinkDefinitions } from '../../connectors/sinks.ts';
import { parseTopology } from '../../topology/loader.ts';
import { planTopology } from '../../topology/plan.ts';
import { TopologyError } from '../../kernel/diagnostics.ts';
import { REFERENCE_PATH, renderReference, topologyJsonSchema } from '../../topology/reference.ts';

describe('topology/REFERENCE.md', () => {
  it('is up to date with the specs (regenerate with: npm run docs)', () => {
    const committed = readFileSync(REFERENCE_PATH, 'utf8');
    const fresh = renderReference(operatorDefinitions, sinkDefinitions);
    if (committed !== fresh) {
      throw new Error('topology/REFERENCE.md is stale: run `npm run docs` and commit the result');
    }
  });

  it('documents every operator, function and diagnostic code', () => {
    const md = renderReference(operatorDefinitions, sinkDefinitions);
    for (const d of operatorDefinitions) expect(md).toContain(`### \`${d.type}\``);
    expect(md).toContain('`matches(s: string, pattern: "literal" [, flags: "literal"]) -> boolean`');
    expect(md).toContain('| `YAML_TAG` |');
  });
});

describe('operator examples', () => {
  const examples = operatorDefinitions.flatMap((d) => (d.examples ?? []).map((e) => [d.type, e.title, e.yaml] as const));

  it.each(examples)('%s: %s validates', (type, title, yaml) => {
    const text = `version: 1\nname: example\n${yaml}`;
    try {
      const t = parseTopology(text, `${type} example '${title}'`, { env: {}, operators: operatorRegistry });
      planTopology(t);
      expect(t.nodes.some((n) => n.def.type === type)).toBe(true);
    } catch (e) {
      if (e instanceof TopologyError) throw new Error(e.format());
      throw e;
    }
  });
});

describe('JSON Schema of topology files', () => {
  it('derives from the same specs', () => {
    const s = topologyJsonSchema(operatorDefinitions, sinkDefinitions);
    expect(s.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(s.required).toEqual(['version', 'name', 'sources']);
    const props = s.properties as Record<string, Record<string, any>>;
    expect(props.sources.items.required).toEqual(['name', 'topic', 'schema']);
    const variants = props.operators.items.oneOf as Record<string, any>[];
    expect(variants).toHaveLength(operatorDefinitions.length);
    const map = variants.find((v) => v.properties.type.enum.includes('map'))!;
    expect(map.properties.type.enum).toEqual(['map', 'transform']);
    expect(map.required).toEqual(['name', 'type']);
    expect(Object.keys(map.properties)).toEqual(['name', 'type', 'from', 'fields', 'keep_input', 'drop', 'schema']);
    expect(map.additionalProperties).toBe(false);
  });
});

describe('sink examples', () => {
  const examples = sinkDefinitions.flatMap((d) => (d.examples ?? []).map((e) => [d.type, e.title, e.yaml] as const));

  it.each(examples)('%s: %s validates and plans', (type, title, yaml) => {
    const text = `version: 1\nname: example\n${yaml}`;
    try {
      const t = parseTopology(text, `${type} example '${title}'`, { env: {}, operators: operatorRegistry });
      planTopology(t);
      expect(t.sinks.some((s) => s.type === type)).toBe(true);
    } catch (e) {
      if (e instanceof TopologyError) throw new Error(e.format());
      throw e;
    }
  });
});
