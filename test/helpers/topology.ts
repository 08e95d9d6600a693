// Loading topology text with the built-in operators, for tests.
import { operatorRegistry } from '../../operators/registry.ts';
import { parseTopology } from '../../topology/loader.ts';
import type { LoadOptions } from '../../topology/loader.ts';
import { planTopology } from '../../topology/plan.ts';
import type { Plan, Topology } from '../../topology/types.ts';
import type { TopologyError } from '../../kernel/diagnostics.ts';

export function loadYaml(yaml: string, file = 'test.yaml', opts: Partial<LoadOptions> = {}): Topology {
  return parseTopology(yaml, file, { env: {}, operators: operatorRegistry, ...opts });
}

export function planYamlBuiltin(yaml: string, file = 'test.yaml', opts: Partial<LoadOptions> = {}): Plan {
  return planTopology(loadYaml(yaml, file, opts));
}

/** The located diagnostics of a topology that does not plan, or 'accepted'. */
export function refusal(yaml: string, file = 'test.yaml'): string {
  try {
    planYamlBuiltin(yaml, file);
  } catch (e) {
    return (e as TopologyError).format();
  }
  return 'accepted';
}
