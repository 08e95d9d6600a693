// Fetches the Apache Kafka broker (and its perf-test tools) as plain jars from Maven Central, so
// that Vigil can run a real broker without Docker or a Kafka download. Maven resolves the jars
// once into a git-ignored cache; a completion marker makes every later call a no-op.
//
// Layout: <cacheRoot>/<version>[+<hash of extra artifacts>]/{pom.xml, libs/*.jar, complete.json}
// where <cacheRoot> is `cacheDir`, else $VIGIL_KAFKA_CACHE, else <repo>/.cache/kafka.
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Kafka release Vigil runs and tests against by default. */
export const KAFKA_VERSION = '4.1.1';
/** Kafka 4.1 logs through slf4j 1.7, so the log4j2 binding must be the slf4j-1 one (`log4j-slf4j-impl`). */
export const LOG4J_VERSION = '2.24.3';
const DEPENDENCY_PLUGIN_VERSION = '3.8.1';
const MARKER = 'complete.json';

/** Stable codes of the errors of fetching Kafka and running the local broker. */
export const KafkaSetupErrorCode = {
  /** `mvn` is not installed (or MVN points nowhere). */
  MAVEN_MISSING: 'VIGIL_KAFKA_MAVEN_MISSING',
  /** Maven ran but could not resolve the jars (offline, unknown version...). */
  JARS_RESOLVE_FAILED: 'VIGIL_KAFKA_JARS_RESOLVE_FAILED',
  /** `java` is not installed (or JAVA_HOME points nowhere). */
  JAVA_MISSING: 'VIGIL_KAFKA_JAVA_MISSING',
  /** kafka-storage format failed. */
  FORMAT_FAILED: 'VIGIL_KAFKA_FORMAT_FAILED',
  /** The broker process exited before it answered. */
  BROKER_EXITED: 'VIGIL_KAFKA_BROKER_EXITED',
  /** The broker did not answer a metadata request in time. */
  BROKER_TIMEOUT: 'VIGIL_KAFKA_BROKER_TIMEOUT',
  /** A port given explicitly for the local broker is taken. */
  PORT_IN_USE: 'VIGIL_KAFKA_PORT_IN_USE',
  /** A detached local broker is already running. */
  ALREADY_RUNNING: 'VIGIL_KAFKA_BROKER_ALREADY_RUNNING',
} as const;
export type KafkaSetupErrorCode = (typeof KafkaSetupErrorCode)[keyof typeof KafkaSetupErrorCode];

export class KafkaSetupError extends Error {
  constructor(
    readonly code: KafkaSetupErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KafkaSetupError';
  }
}

/** The repository root (this file lives in <repo>/connectors/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface KafkaJarsOptions {
  /** Kafka version (default KAFKA_VERSION). */
  version?: string;
  /** Root of the jar cache (default $VIGIL_KAFKA_CACHE, else <repo>/.cache/kafka). */
  cacheDir?: string;
  /**
   * More Maven artifacts to put on the classpath, as "groupId:artifactId[:version]"; the version
   * defaults to the Kafka version (e.g. "org.apache.kafka:kafka-streams" for a benchmark).
   * A different set of extras gets its own cache directory.
   */
  extraArtifacts?: string[];
  /** The Maven executable (default $MVN, else "mvn"). */
  mvnCommand?: string;
  /** Progress messages (one line each); silent by default. */
  log?: (s: string) => void;
}

export interface KafkaJars {
  version: string;
  /** Directory holding every jar. */
  libsDir: string;
  /** A `java -cp` value covering every jar (`<libsDir>/*`). */
  classpath: string;
}

export interface MavenArtifact {
  groupId: string;
  artifactId: string;
  version: string;
}

/** The artifacts whose runtime closure makes a runnable broker plus kafka-*-perf-test tools. */
export function kafkaArtifacts(version: string, extraArtifacts: readonly string[] = []): MavenArtifact[] {
  return [
    { groupId: 'org.apache.kafka', artifactId: 'kafka_2.13', version },
    { groupId: 'org.apache.kafka', artifactId: 'kafka-tools', version },
    { groupId: 'org.apache.logging.log4j', artifactId: 'log4j-slf4j-impl', version: LOG4J_VERSION },
    { groupId: 'org.apache.logging.log4j', artifactId: 'log4j-core', version: LOG4J_VERSION },
    ...extraArtifacts.map((coords) => parseArtifact(coords, version)),
  ];
}

/** Parses "groupId:artifactId[:version]"; the version defaults to `defaultVersion`. */
export function parseArtifact(coords: string, defaultVersion: string): MavenArtifact {
  const parts = coords.trim().split(':');
  const valid = /^[A-Za-z0-9_.-]+$/;
  if ((parts.length !== 2 && parts.length !== 3) || !parts.every((p) => valid.test(p))) {
    throw new Error(`invalid Maven artifact "${coords}": expected groupId:artifactId[:version]`);
  }
  return { groupId: parts[0]!, artifactId: parts[1]!, version: parts[2] ?? defaultVersion };
}

/** The throw-away pom whose runtime dependencies Maven copies into libs/. */
export function renderPom(artifacts: readonly MavenArtifact[]): string {
  const deps = artifacts
    .map(
      (a) =>
        `    <dependency><groupId>${a.groupId}</groupId><artifactId>${a.artifactId}</artifactId>` +
        `<version>${a.version}</version></dependency>`,
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by Vigil (connectors/kafka-jars.ts): the jars of a runnable Kafka broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.vigil</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
${deps}
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>${DEPENDENCY_PLUGIN_VERSION}</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
`;
}

/** Root of the jar cache: the option, else $VIGIL_KAFKA_CACHE, else <repo>/.cache/kafka. */
export function kafkaCacheRoot(cacheDir?: string): string {
  return resolve(cacheDir ?? process.env.VIGIL_KAFKA_CACHE ?? join(REPO_ROOT, '.cache', 'kafka'));
}

/** The cache directory of one version (+ extras, which get a directory of their own). */
export function kafkaCacheDir(version: string, extraArtifacts: readonly string[] = [], cacheDir?: string): string {
  const root = kafkaCacheRoot(cacheDir);
  if (extraArtifacts.length === 0) return join(root, version);
  const key = [...extraArtifacts].map((a) => a.trim()).sort().join(',');
  return join(root, `${version}+${createHash('sha256').update(key).digest('hex').slice(0, 10)}`);
}

interface Marker {
  version: string;
  artifacts: MavenArtifact[];
  jars: number;
  completedAt: string;
}

/**
 * Makes sure the Kafka jars are in the cache and returns where they are. Runs Maven only when
 * the cache's completion marker is missing; concurrent first calls (several processes) are safe:
 * each resolves into a private directory and the first to finish publishes it by a rename.
 */
export async function ensureKafkaJars(opts: KafkaJarsOptions = {}): Promise<KafkaJars> {
  const version = opts.version ?? KAFKA_VERSION;
  const extras = opts.extraArtifacts ?? [];
  const artifacts = kafkaArtifacts(version, extras);
  const dir = kafkaCacheDir(version, extras, opts.cacheDir);
  const libsDir = join(dir, 'libs');
  const result: KafkaJars = { version, libsDir, classpath: join(libsDir, '*') };
  if (await isComplete(dir, libsDir)) return result;

  const log = opts.log ?? (() => {});
  const mvn = opts.mvnCommand ?? process.env.MVN ?? (process.platform === 'win32' ? 'mvn.cmd' : 'mvn');
  await mkdir(dir, { recursive: true });
  const pomPath = join(dir, 'pom.xml');
  await writeFileAtomic(pomPath, renderPom(artifacts));
  const staging = join(dir, `libs.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  log(`Fetching Apache Kafka ${version} jars with Maven into ${libsDir} (one time)...`);
  try {
    await runMaven(mvn, [
      '-q',
      '-B',
      '-f',
      pomPath,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${staging}`,
      '-DincludeScope=runtime',
    ]);
    const jars = countJars(staging);
    if (jars === 0) {
      throw new KafkaSetupError(KafkaSetupErrorCode.JARS_RESOLVE_FAILED, `Maven finished but copied no jars into ${staging}`);
    }
    // Publish by rename (atomic): libs/ is either absent or complete. If another process
    // published first, the rename fails on the non-empty directory and its jars are used.
    try {
      await rename(staging, libsDir);
    } catch (err) {
      if (countJars(libsDir) === 0) throw err;
    }
    const marker: Marker = { version, artifacts, jars: countJars(libsDir), completedAt: new Date().toISOString() };
    await writeFileAtomic(join(dir, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
    log(`Kafka ${version}: ${marker.jars} jars ready.`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return result;
}

/** Writes via a uniquely named temp file and a rename, so readers never see a partial file. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

async function isComplete(dir: string, libsDir: string): Promise<boolean> {
  try {
    const marker = JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as Marker;
    return typeof marker.jars === 'number' && countJars(libsDir) >= marker.jars;
  } catch {
    return false;
  }
}

function countJars(dir: string): number {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.jar')).length;
  } catch {
    return 0;
  }
}

/** Runs Maven; on failure the error carries the tail of Maven's output. */
function runMaven(mvn: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(mvn, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32',
    });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new KafkaSetupError(
              KafkaSetupErrorCode.MAVEN_MISSING,
              `Maven ("${mvn}") was not found. Vigil fetches the Kafka broker jars with Maven: ` +
                `install Maven 3.6+ and a Java 17+ JDK (e.g. apt-get install maven openjdk-17-jdk-headless), ` +
                `or set MVN to the Maven executable, or point KAFKA_BROKERS at a running Kafka.`,
            )
          : new KafkaSetupError(KafkaSetupErrorCode.MAVEN_MISSING, `could not run Maven ("${mvn}"): ${err.message}`, {
              cause: err,
            }),
      );
    });
    child.on('close', (code, signal) => {
      if (code === 0) return resolvePromise();
      reject(
        new KafkaSetupError(
          KafkaSetupErrorCode.JARS_RESOLVE_FAILED,
          `Maven failed to resolve the Kafka jars (${signal ? `signal ${signal}` : `exit code ${code}`}). ` +
            `Last lines of its output:\n${tail(output, 40)}`,
        ),
      );
    });
  });
}

/** The last `lines` lines of a text. */
export function tail(text: string, lines: number): string {
  const all = text.trimEnd().split(/\r?\n/);
  return all.slice(-lines).join('\n');
}

/** The java executable: $JAVA_HOME/bin/java when JAVA_HOME is set, else "java" from PATH. */
export function javaCommand(): string {
  const home = process.env.JAVA_HOME;
  const exe = process.platform === 'win32' ? 'java.exe' : 'java';
  if (home) {
    const candidate = join(home, 'bin', exe);
    if (existsSync(candidate)) return candidate;
  }
  return exe;
}
