// Helpers for integration tests (*.int.test.ts) against the broker test/global-setup.ts provides.
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap servers of the test broker, comma-separated. */
    kafkaBrokers: string;
  }
}

/** The test broker's bootstrap servers. */
export function brokers(): string[] {
  return inject('kafkaBrokers')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
}

let counter = 0;

/**
 * A topic/group/transactional-id name no other test, file or concurrent run will use:
 * "<prefix>-<pid>-<time>-<counter>-<random>", limited to Kafka's legal topic characters.
 */
export function uniqueName(prefix: string): string {
  const safe = prefix.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 120);
  counter += 1;
  return `${safe}-${process.pid}-${Date.now().toString(36)}-${counter}-${randomBytes(3).toString('hex')}`;
}

/** A kafkajs client on the test broker with quiet logging. */
export function testKafka(clientId = 'vigil-test'): Kafka {
  return new Kafka({ clientId, brokers: brokers(), logLevel: logLevel.WARN });
}

/**
 * Creates topics and waits for their leaders. The local test broker has
 * auto.create.topics.enable=false, so tests create the topics they produce to.
 */
export async function createTopics(
  topics: string[],
  opts: { partitions?: number; config?: Record<string, string> } = {},
): Promise<void> {
  const admin = testKafka('vigil-test-admin').admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({
        topic,
        numPartitions: opts.partitions ?? 1,
        configEntries: Object.entries(opts.config ?? {}).map(([name, value]) => ({ name, value })),
      })),
    });
  } finally {
    await admin.disconnect();
  }
}
