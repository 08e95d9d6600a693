// The operator registry: one line per operator. The topology loader, `vigil validate`, the JSON
// Schema and the reference docs (topology/REFERENCE.md) all read it.
import type { OperatorDefinition } from '../kernel/operator.ts';
import { absenceOperator } from './absence.ts';
import { alertOperator } from './alert.ts';
import { routeOperator } from './route.ts';
import { escalateOperator } from './escalate.ts';
import { aggregateOperator } from './aggregate.ts';
import { detectOperator } from './detect.ts';
import { enrichOperator } from './enrich.ts';
import { filterOperator } from './filter.ts';
import { incidentOperator } from './incident.ts';
import { joinOperator } from './join.ts';
import { lookupOperator } from './lookup.ts';
import { mapOperator } from './map.ts';
import { predictOperator } from './predict.ts';
import { sequenceOperator } from './sequence.ts';
import { validateOperator } from './validate.ts';

/** Every operator, once, in the order of the docs. */
export const operatorDefinitions: readonly OperatorDefinition<any>[] = [
  validateOperator,
  filterOperator,
  mapOperator,
  aggregateOperator,
  lookupOperator,
  enrichOperator,
  joinOperator,
  sequenceOperator,
  absenceOperator,
  detectOperator,
  predictOperator,
  incidentOperator,
  alertOperator,
  routeOperator,
  escalateOperator,
];

/** `type:` name (and alias) -> definition. */
export const operatorRegistry: Map<string, OperatorDefinition<any>> = new Map();
for (const def of operatorDefinitions) {
  for (const name of [def.type, ...(def.aliases ?? [])]) {
    if (operatorRegistry.has(name)) throw new Error(`operator type '${name}' is registered twice`);
    operatorRegistry.set(name, def);
  }
}

export function getOperator(type: string): OperatorDefinition<any> | undefined {
  return operatorRegistry.get(type);
}
