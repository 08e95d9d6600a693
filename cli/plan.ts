// `vigil plan <file>` prints a topology's plan; `vigil plan --diff OLD NEW` says, before deploying
// NEW over state written by OLD, what happens to each operator's state (kept, migrated, needs
// --reset-state, new, removed) and which topics appear or go. Nothing touches Kafka.
import type { Command } from 'commander';
import { loadTopology } from '../topology/loader.ts';
import { operatorRegistry } from '../operators/registry.ts';
import { describePlan, planTopology } from '../topology/plan.ts';
import { diffLayouts, stateLayouts } from '../topology/state-layout.ts';
import type { Plan } from '../topology/types.ts';
import { planTopics } from '../runtime/runner.ts';
import { TopologyError, formatDiagnostic } from '../kernel/diagnostics.ts';

export interface PlanIo {
  out(line: string): void;
  err(line: string): void;
}

const stdio: PlanIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

function planOf(file: string, allowEnv: string[], io: PlanIo): Plan | undefined {
  try {
    return planTopology(loadTopology(file, { envAllowlist: allowEnv, operators: operatorRegistry }));
  } catch (e) {
    if (!(e instanceof TopologyError)) throw e;
    for (const d of e.diagnostics) io.err(formatDiagnostic(d));
    return undefined;
  }
}

const VERDICT_TEXT = {
  kept: 'state kept',
  migrated: 'state migrated',
  incompatible: 'state incompatible: refused unless started with --reset-state',
  new: 'new (starts empty)',
  removed: 'removed (its state is left unread)',
} as const;

/**
 * Prints the state verdict per operator and the topic changes; returns 0, 1 when a file is
 * invalid, 2 when some operator's state is incompatible (a deploy would be refused).
 */
export function diffPlans(oldFile: string, newFile: string, opts: { allowEnv?: string[] } = {}, io: PlanIo = stdio): number {
  const allow = opts.allowEnv ?? [];
  const before = planOf(oldFile, allow, io);
  const after = planOf(newFile, allow, io);
  if (before === undefined || after === undefined) return 1;
  if (before.topology.name !== after.topology.name)
    io.out(`note: the topology name changes (${before.topology.name} -> ${after.topology.name}): the new one is another consumer group and starts with no state at all`);
  const changes = diffLayouts(stateLayouts(before), stateLayouts(after));
  io.out(`state (${oldFile} -> ${newFile}):`);
  if (changes.length === 0) io.out('  no operator keeps state');
  const width = Math.max(0, ...changes.map((c) => c.operator.length));
  for (const c of changes) io.out(`  ${c.operator.padEnd(width)}  ${VERDICT_TEXT[c.verdict]}${c.reasons.length > 0 && c.verdict !== 'new' ? `: ${c.reasons.join('; ')}` : ''}`);
  const oldTopics = new Set(planTopics(before).map((t) => t.topic));
  const newTopics = new Set(planTopics(after).map((t) => t.topic));
  const added = [...newTopics].filter((t) => !oldTopics.has(t));
  const removed = [...oldTopics].filter((t) => !newTopics.has(t));
  io.out('topics:');
  if (added.length === 0 && removed.length === 0) io.out('  unchanged');
  for (const t of added) io.out(`  + ${t}`);
  for (const t of removed) io.out(`  - ${t} (no longer used; not deleted)`);
  const refused = changes.filter((c) => c.verdict === 'incompatible').map((c) => c.operator);
  if (refused.length > 0) {
    io.out(`vigil run would refuse to start: deploy with ${refused.map((r) => `--reset-state ${r}`).join(' ')} to drop that state, or keep the old layout`);
    return 2;
  }
  return 0;
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description("Print a topology's plan, or with --diff what deploying NEW over OLD's state does (kept, migrated, incompatible; topics)")
    .argument('<files...>', 'a topology file, or OLD and NEW with --diff')
    .option('--diff', 'compare two topology files: OLD NEW (exit code 2 when some state is incompatible)')
    .option('--allow-env <names>', 'comma-separated environment variables the files may use as ${NAME}')
    .action((files: string[], o: { diff?: boolean; allowEnv?: string }) => {
      const allow = (o.allowEnv ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (o.diff) {
        if (files.length !== 2) throw new Error('vigil plan --diff takes two files: OLD NEW');
        process.exitCode = diffPlans(files[0]!, files[1]!, { allowEnv: allow });
        return;
      }
      for (const file of files) {
        const plan = planOf(file, allow, stdio);
        if (plan === undefined) process.exitCode = 1;
        else stdio.out(describePlan(plan));
      }
    });
}
