// Where a CLI command finds Kafka and the schema registry.
// - Kafka: KAFKA_BROKERS, else the detached local broker (`vigil broker start`), else — only for
//   commands that may start one (the demo) — a new detached local broker.
// - Registry: SCHEMA_REGISTRY_URL (any Confluent-compatible registry), else Vigil's embedded
//   registry, started in this process on the `_schemas` topic, so every Vigil process on the
//   same cluster sees the same ids.
import { resolveBrokers, startLocalBroker } from '../connectors/local-broker.ts';
import { startRegistry } from '../schemas/registry/server.ts';
import { AvroSerde, loadSchemaCatalog } from '../schemas/serde.ts';
import type { RecordSchema } from '../kernel/operator.ts';

export interface Environment {
  brokers: string[];
  registryUrl: string;
  serde: AvroSerde;
  close(): Promise<void>;
}

export class EnvironmentError extends Error {
  readonly code = 'NO_KAFKA';
}

export async function connectEnvironment(opts: {
  startBroker?: boolean;
  /** Reader schemas beyond the built-in catalog (e.g. a topology's extra .avsc files). */
  schemas?: Map<string, RecordSchema>;
  registryPort?: number;
  log?: (line: string) => void;
}): Promise<Environment> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  let brokers = await resolveBrokers();
  if (!brokers) {
    if (!opts.startBroker)
      throw new EnvironmentError('no Kafka found: set KAFKA_BROKERS=host:port, or start the local broker with `vigil broker start`');
    log('[vigil] no Kafka configured: starting the local Apache Kafka broker (first run fetches its jars with Maven)');
    const broker = await startLocalBroker({ detached: true, log });
    brokers = [broker.brokers];
    log(`[vigil] local broker on ${broker.brokers} (stop it with \`vigil broker stop\`)`);
  }
  let registryUrl = process.env.SCHEMA_REGISTRY_URL;
  let closeRegistry = async () => {};
  if (!registryUrl) {
    const reg = await startRegistry({ brokers, port: opts.registryPort ?? 0 });
    registryUrl = reg.url;
    closeRegistry = () => reg.close();
  }
  const catalog = loadSchemaCatalog();
  for (const [name, schema] of opts.schemas ?? []) catalog.set(name, schema);
  const serde = new AvroSerde({ url: registryUrl, catalog });
  return { brokers, registryUrl, serde, close: closeRegistry };
}

/** Resolves on SIGINT or SIGTERM (once), for graceful shutdown. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
