// `vigil backtest <topology> --input <source>=<file> ... --out DIR`: runs a topology in-process over
// recorded data in event time (runtime/backtest.ts) and writes what comes out as JSON lines.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { BacktestInput } from '../runtime/backtest.ts';
import { backtestSummaryText, runBacktest } from '../runtime/backtest.ts';
import { planFile } from './run.ts';

const collect = (v: string, prev: string[]) => [...prev, v];

/** `a=b` split at the first '='; `what` names the option for the error. */
function pair(v: string, what: string): [string, string] {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`${what} takes ${what === '--input' ? '<source>=<file>' : '<source>.<field>=<value>'}, got '${v}'`);
  return [v.slice(0, i), v.slice(i + 1)];
}

/** `source.field=value` -> source, field, value. */
function fieldPair(v: string, what: string): [string, string, string] {
  const [lhs, rhs] = pair(v, what);
  const dot = lhs.indexOf('.');
  if (dot <= 0 || dot === lhs.length - 1) throw new InvalidArgumentError(`${what} takes <source>.<field>=..., got '${v}'`);
  return [lhs.slice(0, dot), lhs.slice(dot + 1), rhs];
}

export interface BacktestCliOptions {
  input: string[];
  set: string[];
  map: string[];
  out: string;
  badRows: 'fail' | 'dead_letter';
  hold?: boolean;
}

/** The inputs of the command line: files per source, with --set constants and --map columns. */
export function backtestInputs(o: Pick<BacktestCliOptions, 'input' | 'set' | 'map'>): BacktestInput[] {
  const inputs = o.input.map((v) => {
    const [source, file] = pair(v, '--input');
    return { source, file, mapping: { columns: {} as Record<string, string>, constants: {} as Record<string, string> } };
  });
  for (const [opt, list, key] of [['--set', o.set, 'constants'], ['--map', o.map, 'columns']] as const)
    for (const v of list) {
      const [source, field, value] = fieldPair(v, opt);
      const targets = inputs.filter((i) => i.source === source);
      if (targets.length === 0) throw new InvalidArgumentError(`${opt} ${v}: no --input for source '${source}'`);
      for (const t of targets) t.mapping[key][field] = value;
    }
  return inputs;
}

export function registerBacktest(program: Command): void {
  program
    .command('backtest <topology>')
    .description('run a topology in-process over recorded data (CSV or JSON lines) in event time; write every sink and operator output as JSON lines')
    .requiredOption('--input <source=file>', 'a file for a source or table (repeat for more); CSV with a header row (comma, semicolon or tab) or JSON lines', collect, [])
    .option('--set <source.field=value>', 'a constant for a field the file lacks (repeatable)', collect, [])
    .option('--map <source.field=column>', 'read a field from a column of another name (repeatable)', collect, [])
    .requiredOption('--out <dir>', 'where to write sinks/, operators/, dead-letters.jsonl and summary.json')
    .option('--bad-rows <policy>', "a row that does not fit its schema: 'fail' (stop, naming file and line) or 'dead_letter' (count it, write it to dead-letters.jsonl, go on)", 'fail')
    .option('--hold', 'at the end of the input keep windows and event-time timers open (default: stream time moves past every record, so windows close)')
    .action(async (file: string, o: BacktestCliOptions) => {
      if (o.badRows !== 'fail' && o.badRows !== 'dead_letter') throw new InvalidArgumentError(`--bad-rows is 'fail' or 'dead_letter', got '${o.badRows as string}'`);
      const plan = planFile(file);
      const summary = await runBacktest(plan, { inputs: backtestInputs(o), badRows: o.badRows, hold: o.hold === true, outDir: o.out });
      process.stdout.write(backtestSummaryText(summary));
      process.stdout.write(`written to ${o.out}\n`);
    });
}
