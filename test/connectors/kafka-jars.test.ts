import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  KAFKA_VERSION,
  KafkaSetupError,
  KafkaSetupErrorCode,
  ensureKafkaJars,
  kafkaArtifacts,
  kafkaCacheDir,
  parseArtifact,
  renderPom,
} from '../../connectors/kafka-jars.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'vigil-jars-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('artifacts and pom', () => {
  it('lists the broker, tools and the slf4j-1 log4j binding; extras default to the Kafka version', () => {
    const ids = kafkaArtifacts('4.1.1', ['org.apache.kafka:kafka-streams']).map(
      (a) => `${a.groupId}:${a.artifactId}:${a.version}`,
    );
    expect(ids).toContain('org.apache.kafka:kafka_2.13:4.1.1');
    expect(ids).toContain('org.apache.kafka:kafka-tools:4.1.1');
    expect(ids).toContain('org.apache.logging.log4j:log4j-slf4j-impl:2.24.3');
    expect(ids).toContain('org.apache.kafka:kafka-streams:4.1.1');
    expect(renderPom(kafkaArtifacts('4.1.1', ['org.example:x:9']))).toContain(
      '<groupId>org.example</groupId><artifactId>x</artifactId><version>9</version>',
    );
  });

  it('refuses malformed coordinates', () => {
    expect(() => parseArtifact('just-a-name', '1')).toThrow(/groupId:artifactId/);
    expect(() => parseArtifact('a:b:c:d', '1')).toThrow();
    expect(() => parseArtifact('a:<b>', '1')).toThrow();
  });

  it('gives extras their own cache directory, independent of their order', () => {
    expect(kafkaCacheDir('4.1.1', [], root)).toBe(join(root, '4.1.1'));
    const a = kafkaCacheDir('4.1.1', ['x:y', 'p:q'], root);
    expect(a).not.toBe(join(root, '4.1.1'));
    expect(kafkaCacheDir('4.1.1', ['p:q', 'x:y'], root)).toBe(a);
  });

  it('honours VIGIL_KAFKA_CACHE', () => {
    const saved = process.env.VIGIL_KAFKA_CACHE;
    process.env.VIGIL_KAFKA_CACHE = root;
    try {
      expect(kafkaCacheDir(KAFKA_VERSION)).toBe(join(root, KAFKA_VERSION));
    } finally {
      if (saved === undefined) delete process.env.VIGIL_KAFKA_CACHE;
      else process.env.VIGIL_KAFKA_CACHE = saved;
    }
  });
});

describe('ensureKafkaJars', () => {
  it('returns a completed cache without calling Maven', async () => {
    const dir = join(root, '9.9.9');
    await mkdir(join(dir, 'libs'), { recursive: true });
    await writeFile(join(dir, 'libs', 'kafka.jar'), '');
    await writeFile(join(dir, 'complete.json'), JSON.stringify({ version: '9.9.9', artifacts: [], jars: 1 }));
    const logged: string[] = [];
    const jars = await ensureKafkaJars({
      version: '9.9.9',
      cacheDir: root,
      mvnCommand: join(root, 'no-such-mvn'),
      log: (s) => logged.push(s),
    });
    expect(jars).toEqual({ version: '9.9.9', libsDir: join(dir, 'libs'), classpath: join(dir, 'libs', '*') });
    expect(logged).toEqual([]);
  });

  it('explains a missing Maven', async () => {
    const err = await ensureKafkaJars({ version: '9.9.9', cacheDir: root, mvnCommand: join(root, 'no-such-mvn') }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KafkaSetupError);
    expect(err).toMatchObject({ code: KafkaSetupErrorCode.MAVEN_MISSING, message: expect.stringMatching(/Maven .* was not found/) });
  });

  it("shows the tail of Maven's output when resolution fails, and leaves no marker", async () => {
    const mvn = join(root, 'fake-mvn');
    await writeFile(mvn, '#!/bin/sh\nfor i in $(seq 1 100); do echo "line $i"; done\necho "[ERROR] Could not resolve org.apache.kafka:kafka_2.13:9.9.9" >&2\nexit 1\n');
    await chmod(mvn, 0o755);
    const err = await ensureKafkaJars({ version: '9.9.9', cacheDir: root, mvnCommand: mvn }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: KafkaSetupErrorCode.JARS_RESOLVE_FAILED });
    const message = (err as Error).message;
    expect(message).toContain('Could not resolve org.apache.kafka:kafka_2.13:9.9.9');
    expect(message).toContain('line 100');
    expect(message).not.toContain('line 1\n');
    await expect(ensureKafkaJars({ version: '9.9.9', cacheDir: root, mvnCommand: join(root, 'no-such-mvn') })).rejects.toThrow();
  });
});
