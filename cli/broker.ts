// `vigil broker start|stop|status|fetch`: a local single-node Kafka broker for development,
// run from Maven-fetched jars (Java 17+ and Maven needed; no Docker).
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { KAFKA_VERSION, KafkaSetupError, ensureKafkaJars } from '../connectors/kafka-jars.ts';
import {
  defaultDetachedDataDir,
  defaultStateFile,
  detachedBrokerStatus,
  startLocalBroker,
  stopDetachedBroker,
} from '../connectors/local-broker.ts';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('expected a port number (1-65535)');
  return port;
}

function parseHeap(value: string): number {
  const mb = Number(value);
  if (!Number.isInteger(mb) || mb < 128) throw new InvalidArgumentError('expected a heap size in MiB (>= 128)');
  return mb;
}

/** Progress and hints go to stderr; stdout carries only the answer (e.g. the bootstrap address). */
function progress(s: string): void {
  process.stderr.write(`${s}\n`);
}

/** Wraps an action: a failure prints its message (with Maven's or the broker's log tail), exit code 1. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const code = err instanceof KafkaSetupError ? ` [${err.code}]` : '';
      progress(`vigil broker: ${err instanceof Error ? err.message : String(err)}${code}`);
      process.exitCode = 1;
    }
  };
}

interface StartOptions {
  port?: number;
  controllerPort?: number;
  dataDir: string;
  heap: number;
  secureUser: Record<string, string>;
}

function collectUser(value: string, users: Record<string, string>): Record<string, string> {
  const at = value.indexOf(':');
  if (at <= 0 || at === value.length - 1) throw new InvalidArgumentError('expected user:password');
  return { ...users, [value.slice(0, at)]: value.slice(at + 1) };
}

async function start(opts: StartOptions): Promise<void> {
  const status = await detachedBrokerStatus();
  if (status?.alive) {
    progress(`A local Kafka broker is already running (pid ${status.state.pid}).`);
    console.log(status.state.brokers);
    return;
  }
  const started = Date.now();
  const b = await startLocalBroker({
    detached: true,
    dataDir: opts.dataDir,
    port: opts.port,
    controllerPort: opts.controllerPort,
    heapMb: opts.heap,
    log: progress,
    ...(Object.keys(opts.secureUser).length > 0 ? { secure: { users: opts.secureUser } } : {}),
  });
  progress(
    `Kafka ${KAFKA_VERSION} started in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(pid ${b.pid}, data ${b.dataDir}, log ${b.logFile}).`,
  );
  progress(`Vigil finds it on its own; other tools: KAFKA_BROKERS=${b.brokers}`);
  if (b.secure) {
    const user = Object.keys(opts.secureUser)[0]!;
    progress(
      `Secured listeners: SASL_SSL ${b.secure.saslSsl} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), SSL ${b.secure.ssl} (client certificate required).\n` +
        `  SASL_SSL: KAFKA_BROKERS=${b.secure.saslSsl} KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SASL_MECHANISM=SCRAM-SHA-512 ` +
        `KAFKA_SASL_USERNAME=${user} KAFKA_SASL_PASSWORD=... KAFKA_SSL_CA_LOCATION=${b.secure.caFile}\n` +
        `  SSL: KAFKA_BROKERS=${b.secure.ssl} KAFKA_SECURITY_PROTOCOL=SSL KAFKA_SSL_CA_LOCATION=${b.secure.caFile} ` +
        `KAFKA_SSL_CERTIFICATE_LOCATION=${b.secure.clientCertFile} KAFKA_SSL_KEY_LOCATION=${b.secure.clientKeyFile}`,
    );
  }  console.log(b.brokers);
}

async function stop(): Promise<void> {
  const state = await stopDetachedBroker();
  if (!state) {
    progress(`No local Kafka broker is recorded (${defaultStateFile()}).`);
    return;
  }
  progress(`Stopped the local Kafka broker at ${state.brokers} (pid ${state.pid}).`);
}

async function status(opts: { json?: boolean }): Promise<void> {
  const s = await detachedBrokerStatus();
  if (opts.json) {
    console.log(JSON.stringify(s ?? { running: false }, null, 2));
  } else if (!s) {
    console.log('not running');
  } else if (!s.alive) {
    console.log(`not running (stale state for pid ${s.state.pid}; \`vigil broker stop\` clears it)`);
  } else {
    console.log(
      `${s.answering ? 'running' : 'not answering'}: ${s.state.brokers} ` +
        `(pid ${s.state.pid}, Kafka ${s.state.version}, since ${s.state.startedAt})\n` +
        `data: ${s.state.dataDir}\nlog:  ${s.state.logFile}`,
    );
  }
  if (!s?.answering) process.exitCode = 1;
}

async function fetch(opts: { kafkaVersion: string }): Promise<void> {
  const jars = await ensureKafkaJars({ version: opts.kafkaVersion, log: progress });
  console.log(jars.libsDir);
}

export function registerBroker(program: Command): void {
  const broker = program
    .command('broker')
    .description('Run a local single-node Apache Kafka broker (KRaft) for development and tests');

  broker
    .command('start')
    .description('Start a local Kafka broker in the background and print its bootstrap address')
    .option('--port <port>', 'client port (default: the one used last time if free, else any free port)', parsePort)
    .option('--controller-port <port>', 'KRaft controller port (default: like --port)', parsePort)
    .option('--data-dir <dir>', 'data directory, kept across restarts', defaultDetachedDataDir())
    .option('--heap <mb>', 'JVM max heap in MiB', parseHeap, 512)
    .option(
      '--secure-user <user:password>',
      'also open a SASL_SSL listener (PLAIN and SCRAM for this user; repeatable) and an SSL listener requiring a client certificate, with certificates made by openssl (SCRAM users: a new data dir)',
      collectUser,
      {},
    )
    .action(action(start));

  broker.command('stop').description('Stop the local Kafka broker started by `vigil broker start`').action(action(stop));

  broker
    .command('status')
    .description('Show whether the local Kafka broker is running (exit code 1 when it does not answer)')
    .option('--json', 'print the state as JSON')
    .action(action(status));

  broker
    .command('fetch')
    .description('Download the Kafka jars with Maven into the cache (no-op when already cached)')
    .option('--kafka-version <version>', 'Kafka version', KAFKA_VERSION)
    .action(action(fetch));
}
