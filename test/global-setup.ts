// vitest globalSetup of the `integration` project: provides one Kafka broker to every
// *.int.test.ts file as inject('kafkaBrokers') (see test/kafka.ts). In order of preference:
//   1. KAFKA_BROKERS (comma-separated), used as is;
//   2. a Kafka container, when a Docker engine is reachable (test/fixtures/kafka-container.ts);
//   3. a local broker from Maven-fetched jars in a fresh temp dir (connectors/local-broker.ts).
// VIGIL_TEST_KAFKA=local|docker skips the detection. Teardown stops what setup started.
import type { TestProject } from 'vitest/node';
import type {} from './kafka.ts';
import { Kafka, logLevel } from 'kafkajs';
import { startLocalBroker } from '../connectors/local-broker.ts';

const DOCKER_CHECK_TIMEOUT_MS = 5000;

/** Whether testcontainers finds a working container runtime (quietly, and quickly). */
async function dockerAvailable(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), DOCKER_CHECK_TIMEOUT_MS);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Creates the group and transaction coordinators' internal topics up front, so that tests do not
 * start with "coordinator is loading" retries (and their error logs) on a brand-new broker.
 */
async function warmUp(brokers: string): Promise<void> {
  const kafka = new Kafka({ clientId: 'vigil-test-warmup', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer({ transactionalId: `vigil-warmup-${process.pid}`, maxInFlightRequests: 1, idempotent: true });
  try {
    await admin.connect();
    await admin.describeGroups([`vigil-warmup-${process.pid}`]);
    await producer.connect();
    await (await producer.transaction()).abort();
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnv = process.env.KAFKA_BROKERS?.trim();
  if (fromEnv) {
    project.provide('kafkaBrokers', fromEnv);
    return async () => {};
  }
  const mode = process.env.VIGIL_TEST_KAFKA;
  if (mode === 'docker' || (mode !== 'local' && (await dockerAvailable()))) {
    const { startKafkaContainer } = await import('./fixtures/kafka-container.ts');
    const container = await startKafkaContainer();
    await warmUp(container.brokers);
    project.provide('kafkaBrokers', container.brokers);
    return () => container.stop();
  }
  const started = Date.now();
  const broker = await startLocalBroker({ log: (s) => console.log(`[kafka] ${s}`) });
  await warmUp(broker.brokers);
  console.log(`[kafka] local broker ${broker.brokers} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  project.provide('kafkaBrokers', broker.brokers);
  return () => broker.stop();
}
