// Where a CLI command finds Kafka and the schema registry.
// - Kafka: KAFKA_BROKERS, else the detached local broker (`vigil broker start`), else — only for
//   commands that may start one (the demo) — a new detached local broker.
// - Registry: SCHEMA_REGISTRY_URL (any Confluent-compatible registry; credentials as user-info,
//   https://user:password@host, go to the client as basic auth and are never printed), else Vigil's
//   embedded registry, started in this process on the `_vigil_schemas` topic (VIGIL_REGISTRY_TOPIC),
//   so every Vigil process on the same cluster sees the same ids. It binds VIGIL_REGISTRY_HOST
//   (default 127.0.0.1) port VIGIL_REGISTRY_PORT (default a free one) and, with VIGIL_REGISTRY_USER
//   and VIGIL_REGISTRY_PASSWORD set, requires them as basic auth.
import { checkKafkaTls } from '../connectors/kafka-client.ts';
import { resolveBrokers, startLocalBroker } from '../connectors/local-broker.ts';
import { DEFAULT_REGISTRY_TOPIC, startRegistry } from '../schemas/registry/server.ts';
import { AvroSerde, loadSchemaCatalog } from '../schemas/serde.ts';
import { describeSecurity, kafkaSecurity } from '../kernel/kafka-security.ts';
import type { RecordSchema } from '../kernel/operator.ts';

export interface Environment {
  brokers: string[];
  /** How the Kafka connections authenticate and encrypt, for the start line (no secrets). */
  kafkaSecurity: string;
  /** With credentials, if any: print redactText(registryUrl) only. */
  registryUrl: string;
  /** Set when the registry is the embedded one started here: where it listens and its topic. */
  embeddedRegistry?: { url: string; topic: string };
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
  // SASL/TLS settings are checked before anything connects: a mistake there is named, not retried.
  const security = kafkaSecurity();
  let brokers = await resolveBrokers();
  if (!brokers) {
    if (!opts.startBroker)
      throw new EnvironmentError('no Kafka found: set KAFKA_BROKERS=host:port, or start the local broker with `vigil broker start`');
    log('[vigil] no Kafka configured: starting the local Apache Kafka broker (first run fetches its jars with Maven)');
    const broker = await startLocalBroker({ detached: true, log });
    brokers = [broker.brokers];
    log(`[vigil] local broker on ${broker.brokers} (stop it with \`vigil broker stop\`)`);
  }
  await checkKafkaTls(brokers, security);
  let registryUrl = process.env.SCHEMA_REGISTRY_URL;
  let closeRegistry = async () => {};
  let embeddedRegistry: Environment['embeddedRegistry'];
  if (!registryUrl) {
    const e = process.env;
    const user = e.VIGIL_REGISTRY_USER;
    const password = e.VIGIL_REGISTRY_PASSWORD;
    if ((user === undefined) !== (password === undefined)) throw new EnvironmentError('set both VIGIL_REGISTRY_USER and VIGIL_REGISTRY_PASSWORD, or neither');
    const port = opts.registryPort ?? (e.VIGIL_REGISTRY_PORT ? Number(e.VIGIL_REGISTRY_PORT) : 0);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new EnvironmentError(`VIGIL_REGISTRY_PORT must be a port number, not '${e.VIGIL_REGISTRY_PORT}'`);
    const topic = e.VIGIL_REGISTRY_TOPIC || DEFAULT_REGISTRY_TOPIC;
    const reg = await startRegistry({ brokers, port, topic, ...(e.VIGIL_REGISTRY_HOST ? { host: e.VIGIL_REGISTRY_HOST } : {}), ...(user !== undefined ? { auth: { username: user, password: password! } } : {}) });
    embeddedRegistry = { url: reg.url, topic };
    registryUrl = user === undefined ? reg.url : reg.url.replace('://', `://${encodeURIComponent(user)}:${encodeURIComponent(password!)}@`);
    closeRegistry = () => reg.close();
  }
  const catalog = loadSchemaCatalog();
  for (const [name, schema] of opts.schemas ?? []) catalog.set(name, schema);
  const serde = new AvroSerde({ url: registryUrl, catalog });
  return { brokers, kafkaSecurity: describeSecurity(security), registryUrl, serde, close: closeRegistry, ...(embeddedRegistry !== undefined ? { embeddedRegistry } : {}) };
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
