// `vigil validate <file...>`: loads and plans topology files without touching Kafka.
import type { Command } from 'commander';
import { loadTopology } from '../topology/loader.ts';
import { operatorRegistry } from '../operators/registry.ts';
import { describePlan, planTopology } from '../topology/plan.ts';
import { TopologyError, formatDiagnostic } from '../kernel/diagnostics.ts';
import type { Diagnostic } from '../kernel/diagnostics.ts';

export interface ValidateOptions {
  /** Comma-separated variable names the files may interpolate (added to VIGIL_ENV_ALLOWLIST). */
  allowEnv?: string;
  /** Print the plan of each valid file. */
  plan?: boolean;
  /** Print one JSON object per file instead of text. */
  json?: boolean;
  env?: Record<string, string | undefined>;
}

export interface ValidateIo {
  out(line: string): void;
  err(line: string): void;
}

/** Validates files; returns the exit code (0 when all are valid, 1 otherwise). */
export function validateFiles(files: string[], opts: ValidateOptions = {}, io: ValidateIo = stdio): number {
  let failed = false;
  const allow = (opts.allowEnv ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const file of files) {
    let diagnostics: readonly Diagnostic[] = [];
    let summary: string | undefined;
    let planText: string | undefined;
    let counts: Record<string, number> | undefined;
    try {
      const t = loadTopology(file, { envAllowlist: allow, env: opts.env, operators: operatorRegistry });
      const plan = planTopology(t);
      counts = { sources: t.sources.length, operators: t.nodes.length, sinks: t.sinks.length, subtopologies: plan.subtopologies.length };
      summary = `OK ${file}: ${plural(counts.sources, 'source')}, ${plural(counts.operators, 'operator')}, ${plural(counts.sinks, 'sink')}, ${plural(counts.subtopologies, 'sub-topology', 'sub-topologies')}`;
      if (opts.plan) planText = describePlan(plan);
    } catch (e) {
      if (!(e instanceof TopologyError)) throw e;
      diagnostics = e.diagnostics;
      failed = true;
    }
    if (opts.json) {
      io.out(JSON.stringify({ file, ok: diagnostics.length === 0, ...(counts !== undefined ? counts : {}), diagnostics }));
      continue;
    }
    if (summary !== undefined) {
      io.out(summary);
      if (planText !== undefined) io.out(planText);
    }
    for (const d of diagnostics) io.err(formatDiagnostic(d));
  }
  return failed ? 1 : 0;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

const stdio: ValidateIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('Check topology files (syntax, operators, schemas, expressions, plan) without touching Kafka')
    .argument('<file...>', 'topology files (YAML)')
    .option('--allow-env <names>', 'comma-separated environment variables the files may use as ${NAME} (adds to VIGIL_ENV_ALLOWLIST)')
    .option('--plan', 'print the plan of each valid file: sub-topologies, internal topics, stores')
    .option('--json', 'print one JSON object per file (diagnostics with file, line, column, code, message)')
    .action((files: string[], o: ValidateOptions) => {
      const code = validateFiles(files, o);
      if (code !== 0) process.exitCode = code;
    });
}
