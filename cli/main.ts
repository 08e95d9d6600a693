// The `vigil` command line. Each command group lives in its own file and registers itself here.
import { Command } from 'commander';
import { registerBroker } from './broker.ts';
import { registerValidate } from './validate.ts';

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('vigil').description('Stream processing on Apache Kafka for monitoring telemetry').showHelpAfterError();
  registerBroker(program);
  registerValidate(program);
  await program.parseAsync(argv);
}
