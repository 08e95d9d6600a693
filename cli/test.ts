// `vigil test <files...>`: runs topology test files in-process (runtime/topology-tests.ts) and
// prints each test's result, with the expected and actual records of a failure.
import type { Command } from 'commander';
import { operatorRegistry } from '../operators/registry.ts';
import { runTopologyTestFile } from '../runtime/topology-tests.ts';

export async function runTestFiles(files: string[], out: (line: string) => void): Promise<number> {
  let failed = 0;
  let passed = 0;
  for (const file of files)
    for (const r of await runTopologyTestFile(file, { operators: operatorRegistry })) {
      if (r.ok) {
        passed++;
        out(`ok   ${file} > ${r.name}`);
      } else {
        failed++;
        out(`FAIL ${file} > ${r.name}\n${r.failure}`);
      }
    }
  out(`${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

export function registerTest(program: Command): void {
  program
    .command('test')
    .description('run topology test files (*.test.yaml): records in, expected records out, in-process')
    .argument('<file...>', 'topology test files')
    .action(async (files: string[]) => {
      const code = await runTestFiles(files, (l) => process.stdout.write(`${l}\n`));
      if (code !== 0) process.exitCode = code;
    });
}
