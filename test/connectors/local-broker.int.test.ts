import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import type { KafkaMessage } from 'kafkajs';
import { ensureKafkaJars, kafkaCacheDir, KAFKA_VERSION, KafkaSetupError, KafkaSetupErrorCode } from '../../connectors/kafka-jars.ts';
import {
  brokerAnswers,
  detachedBrokerStatus,
  isAlive,
  resolveBrokers,
  startLocalBroker,
  stopDetachedBroker,
} from '../../connectors/local-broker.ts';
import type { LocalBroker } from '../../connectors/local-broker.ts';
import { brokers, createTopics, testKafka, uniqueName } from '../kafka.ts';

function client(bootstrap: string[]): Kafka {
  // Quiet: a brand-new broker answers "coordinator loading" at first, which kafkajs logs as errors and retries.
  return new Kafka({ clientId: 'vigil-broker-test', brokers: bootstrap, logLevel: logLevel.NOTHING });
}

/** Consumes `count` messages of `topic` from the beginning with a fresh group. */
async function consume(kafka: Kafka, topic: string, count: number, readUncommitted = false): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('g'), readUncommitted });
  const got: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out with ${got.length}/${count} messages`)), 60_000);
      void consumer
        .run({
          eachMessage: async ({ message }) => {
            got.push(message);
            if (got.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

describe('the integration test broker', () => {
  it('answers metadata requests', async () => {
    const admin = testKafka().admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      expect(cluster.brokers).toHaveLength(1);
      expect(brokers().length).toBeGreaterThan(0);
    } finally {
      await admin.disconnect();
    }
  });

  it('round-trips records, plain and transactional', async () => {
    const topic = uniqueName('roundtrip');
    await createTopics([topic], { partitions: 2 });
    const kafka = testKafka();

    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'k1', value: 'plain', headers: { h: 'v' } }] });
    await producer.disconnect();

    const txProducer = kafka.producer({ transactionalId: uniqueName('tx'), idempotent: true, maxInFlightRequests: 1 });
    await txProducer.connect();
    const committed = await txProducer.transaction();
    await committed.send({ topic, messages: [{ key: 'k2', value: 'committed' }] });
    await committed.commit();
    const aborted = await txProducer.transaction();
    await aborted.send({ topic, messages: [{ key: 'k3', value: 'aborted' }] });
    await aborted.abort();
    await txProducer.disconnect();

    const messages = await consume(kafka, topic, 2);
    const byKey = new Map(messages.map((m) => [m.key?.toString(), m]));
    expect(byKey.get('k1')?.value?.toString()).toBe('plain');
    expect(byKey.get('k1')?.headers?.h?.toString()).toBe('v');
    expect(byKey.get('k2')?.value?.toString()).toBe('committed');
    expect(byKey.has('k3')).toBe(false);
  });
});

describe('startLocalBroker', () => {
  const started: LocalBroker[] = [];
  afterAll(async () => {
    await Promise.all(started.map((b) => b.stop()));
  });

  it('runs a second broker on its own ports and stop() ends it', async () => {
    const second = await startLocalBroker();
    started.push(second);
    expect(brokers()).not.toContain(second.brokers);
    expect(isAlive(second.pid)).toBe(true);

    const kafka = client([second.brokers]);
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('second');
    try {
      expect((await admin.describeCluster()).brokers).toHaveLength(1);
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
      // auto.create.topics.enable=false: the topic exists here only, not on the main test broker.
      expect(await admin.listTopics()).toContain(topic);
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'on the second broker' }] });
    await producer.disconnect();
    const [message] = await consume(kafka, topic, 1);
    expect(message?.value?.toString()).toBe('on the second broker');

    await second.stop();
    expect(isAlive(second.pid)).toBe(false);
    expect(existsSync(second.dataDir)).toBe(false);
    expect(await brokerAnswers(second.brokers, 1000)).toBe(false);
  });

  it('fails with the tail of the broker log when the broker does not answer in time', async () => {
    const err = await startLocalBroker({ startTimeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KafkaSetupError);
    expect(err).toMatchObject({ code: KafkaSetupErrorCode.BROKER_TIMEOUT });
    expect((err as Error).message).toMatch(/did not answer on 127\.0\.0\.1:\d+ within 0\.2 s\. Last lines of its log:/);
  });

  it('detached: records a state file that resolveBrokers and stop find', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-detached-'));
    const stateFile = join(dir, 'broker.json');
    const savedEnv = process.env.KAFKA_BROKERS;
    delete process.env.KAFKA_BROKERS;
    try {
      const broker = await startLocalBroker({ detached: true, dataDir: join(dir, 'kafka'), stateFile });
      started.push(broker);
      await expect(startLocalBroker({ detached: true, dataDir: join(dir, 'other'), stateFile })).rejects.toThrow(
        /already running/,
      );
      const status = await detachedBrokerStatus(stateFile);
      expect(status).toMatchObject({ alive: true, answering: true, state: { pid: broker.pid, version: KAFKA_VERSION } });
      expect(await resolveBrokers({ stateFile })).toEqual([broker.brokers]);

      process.env.KAFKA_BROKERS = 'env-host:1234, other:5';
      expect(await resolveBrokers({ stateFile })).toEqual(['env-host:1234', 'other:5']);
      delete process.env.KAFKA_BROKERS;

      expect((await stopDetachedBroker(stateFile))?.pid).toBe(broker.pid);
      expect(isAlive(broker.pid)).toBe(false);
      expect(existsSync(stateFile)).toBe(false);
      expect(await resolveBrokers({ stateFile })).toBeUndefined();
      // The data directory of a detached broker is kept for the next start.
      expect(existsSync(join(dir, 'kafka', 'kafka-logs', 'meta.properties'))).toBe(true);
    } finally {
      if (savedEnv === undefined) delete process.env.KAFKA_BROKERS;
      else process.env.KAFKA_BROKERS = savedEnv;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ensureKafkaJars', () => {
  it('reuses the cache without running Maven', async () => {
    const first = await ensureKafkaJars();
    const logged: string[] = [];
    // A Maven that cannot run: any attempt to resolve would fail.
    const second = await ensureKafkaJars({ mvnCommand: '/nonexistent/mvn', log: (s) => logged.push(s) });
    expect(second).toEqual(first);
    expect(logged).toEqual([]);
    expect(existsSync(join(kafkaCacheDir(KAFKA_VERSION), 'complete.json'))).toBe(true);
  });
});
