import { resolve } from 'node:path';
import type { Command } from 'commander';
import { connectEnvironment, untilSignal } from './environment.ts';
import type { Environment } from './environment.ts';
import { loadTopology } from '../topology/loader.ts';
import { planTopology } from '../topology/plan.ts';
import type { Plan } from '../topology/types.ts';
import { startRunner } from '../runtime/runner.ts';
import type { Runner } from '../runtime/runner.ts';
import { operatorRegistry } from '../operators/registry.ts';
import { redactText } from '../kernel/redact.ts';

export interface RunOptions {
  onFatal?: (error: Error) => void;
  metricsPort?: number;
  /** Address /metrics, /health and /ack listen on (default 127.0.0.1; 0.0.0.0 for every interface). */
  metricsHost?: string;
  /** Consumer group session timeout (ms): how long a dead instance keeps its partitions. */
  sessionTimeoutMs?: number;
  instanceId?: string;
  log?: (line: string) => void;
  /** Operators whose state is dropped at start. */
  resetState?: string[];
}

/** Loads (with the built-in operators) and plans a topology file. */
export function planFile(file: string): Plan {
  return planTopology(loadTopology(resolve(file), { operators: operatorRegistry }));
}

/** Starts a Runner for a planned topology in an environment. */
export function runPlan(env: Environment, plan: Plan, opts: RunOptions = {}): Promise<Runner> {
  return startRunner({ plan, brokers: env.brokers, serde: env.serde, ...opts });
}

export function registerRun(program: Command): void {
  program
    .command('run <topology>')
    .description('run a topology file on Kafka until Ctrl-C (SIGINT/SIGTERM stop it gracefully)')
    .option('--metrics-port <port>', 'serve /metrics and /health on this port (0 = any free port)', '9464')
    .option('--metrics-host <address>', 'the address /metrics, /health and /ack listen on (0.0.0.0: every interface, for a Prometheus on another host)', process.env.VIGIL_METRICS_HOST ?? '127.0.0.1')
    .option('--instance <id>', 'instance id for logs and client ids')
    .option('--session-timeout <ms>', 'consumer group session timeout: how long a dead instance keeps its partitions', '30000')
    .option('--reset-state <operator>', "drop this operator's state at start (after a change to its state layout that cannot migrate; repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .action(async (file: string, o: { metricsPort: string; metricsHost: string; instance?: string; sessionTimeout: string; resetState: string[] }) => {
      const signal = untilSignal(); // a signal during start-up still stops gracefully once started
      const plan = planFile(file);
      const env = await connectEnvironment({});
      // Outside producers need the registry: say where it is (credentials never printed).
      process.stderr.write(`[vigil] kafka at ${env.brokers.join(',')} (${env.kafkaSecurity})\n`);
      if (env.embeddedRegistry !== undefined) process.stderr.write(`[vigil] schema registry (embedded) at ${env.embeddedRegistry.url}, topic ${env.embeddedRegistry.topic}\n`);
      else process.stderr.write(`[vigil] schema registry at ${redactText(env.registryUrl)}\n`);
      let fatal!: (e: Error) => void;
      const failed = new Promise<Error>((r) => (fatal = r));
      let runner: Runner;
      try {
        runner = await runPlan(env, plan, {
          metricsPort: Number(o.metricsPort),
          metricsHost: o.metricsHost,
          instanceId: o.instance,
          sessionTimeoutMs: Number(o.sessionTimeout),
          onFatal: fatal,
          resetState: o.resetState,
        });
      } catch (err) {
        await env.close();
        throw err;
      }
      const why = await Promise.race([signal, failed]);
      if (why instanceof Error) {
        process.stderr.write(`[vigil] processing stopped: ${why.message}\n`);
        process.exitCode = 1;
      } else process.stderr.write(`[vigil] ${why}: stopping\n`);
      await runner.stop();
      await env.close();
    });
}
