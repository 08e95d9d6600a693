// The `vigil` command line. Each command group lives in its own file and registers itself here.
import { Command } from 'commander';
import { redactText } from '../kernel/redact.ts';
import { registerAlerting } from './alerting.ts';
import { registerBacktest } from './backtest.ts';
import { registerBench } from './bench.ts';
import { registerBroker } from './broker.ts';
import { registerDemo } from './demo.ts';
import { registerDocs } from './docs.ts';
import { registerPlan } from './plan.ts';
import { registerProduce } from './produce.ts';
import { registerReport } from './report.ts';
import { registerRun } from './run.ts';
import { registerTail } from './tail.ts';
import { registerTest } from './test.ts';
import { registerValidate } from './validate.ts';

export async function main(argv: string[]): Promise<void> {
  // `vigil tail ... | head`: a reader that went away ends the command quietly, not with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const program = new Command();
  // Positional options: `vigil bench nab --out DIR` gives --out to nab, though vigil bench has one too.
  program.name('vigil').description('Stream processing on Apache Kafka for monitoring telemetry').showHelpAfterError().enablePositionalOptions();
  registerRun(program);
  registerValidate(program);
  registerPlan(program);
  registerTest(program);
  registerBacktest(program);
  registerAlerting(program);
  registerReport(program);
  registerDemo(program);
  registerProduce(program);
  registerTail(program);
  registerBroker(program);
  registerBench(program);
  registerDocs(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as Error & { format?: () => string };
    process.stderr.write(`vigil: ${redactText(typeof e.format === 'function' ? e.format() : e.message)}\n`);
    process.exitCode = 1;
  }
}
