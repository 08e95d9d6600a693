// `vigil docs`: writes topology/REFERENCE.md from the built-in operators' specs (or checks it, or
// prints the topology file's JSON Schema).
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { operatorDefinitions } from '../operators/registry.ts';
import { sinkDefinitions } from '../connectors/sinks.ts';
import { REFERENCE_PATH, renderReference, topologyJsonSchema } from '../topology/reference.ts';

export function registerDocs(program: Command): void {
  program
    .command('docs')
    .description('write topology/REFERENCE.md from the operators\' specs')
    .option('--check', 'exit 1 when topology/REFERENCE.md is stale, writing nothing')
    .option('--json-schema', 'print the JSON Schema of topology files instead')
    .action((o: { check?: boolean; jsonSchema?: boolean }) => {
      if (o.jsonSchema) {
        process.stdout.write(`${JSON.stringify(topologyJsonSchema(operatorDefinitions, sinkDefinitions), null, 2)}\n`);
        return;
      }
      const text = renderReference(operatorDefinitions, sinkDefinitions);
      let current = '';
      try {
        current = readFileSync(REFERENCE_PATH, 'utf8');
      } catch {
        current = '';
      }
      if (o.check) {
        if (current !== text) {
          process.stderr.write(`${REFERENCE_PATH} is stale: run npm run docs\n`);
          process.exitCode = 1;
        }
      } else if (current !== text) {
        writeFileSync(REFERENCE_PATH, text);
        process.stdout.write(`wrote ${REFERENCE_PATH}\n`);
      } else {
        process.stdout.write(`${REFERENCE_PATH} is up to date\n`);
      }
    });
}
