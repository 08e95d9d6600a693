import { describe, expect, it } from 'vitest';
import {
  BROKER_DEFAULTS,
  brokerServerProps,
  freePort,
  parseServerProperties,
  randomClusterId,
  renderServerProperties,
} from '../../connectors/local-broker.ts';
import { kafkaEnvName } from '../fixtures/kafka-container.ts';

describe('server.properties', () => {
  it('renders listeners, quorum and log dir from the ports', () => {
    const props = brokerServerProps({ port: 41001, controllerPort: 41002, logDir: '/data/kafka-logs' });
    expect(props).toMatchObject({
      'process.roles': 'broker,controller',
      'controller.quorum.voters': '1@127.0.0.1:41002',
      listeners: 'PLAINTEXT://127.0.0.1:41001,CONTROLLER://127.0.0.1:41002',
      'advertised.listeners': 'PLAINTEXT://127.0.0.1:41001',
      'log.dirs': '/data/kafka-logs',
      'offsets.topic.replication.factor': '1',
      'auto.create.topics.enable': 'false',
    });
    expect(JSON.stringify(props)).not.toContain('9092');
  });

  it('secured listeners: SASL_SSL with PLAIN and SCRAM, SSL requiring a client certificate, PEM key and trust stores', () => {
    const props = brokerServerProps({
      port: 41001,
      controllerPort: 41002,
      logDir: '/d/logs',
      secure: { saslSslPort: 41003, sslPort: 41004, tlsDir: '/d/tls', users: { alice: 'pw"1' } },
    });
    expect(props.listeners).toBe('PLAINTEXT://127.0.0.1:41001,CONTROLLER://127.0.0.1:41002,SASL_SSL://127.0.0.1:41003,SSL://127.0.0.1:41004');
    expect(props['advertised.listeners']).toBe('PLAINTEXT://127.0.0.1:41001,SASL_SSL://127.0.0.1:41003,SSL://127.0.0.1:41004');
    expect(props['listener.security.protocol.map']).toBe('PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL');
    expect(props['inter.broker.listener.name']).toBe('PLAINTEXT');
    expect(props['listener.name.sasl_ssl.plain.sasl.jaas.config']).toBe('org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="pw\\"1";');
    expect(props['listener.name.ssl.ssl.client.auth']).toBe('required');
    expect(props['ssl.keystore.location']).toBe('/d/tls/broker-keystore.pem');
    expect(props['ssl.truststore.location']).toBe('/d/tls/ca.pem');
  });

  it('lets overrides win', () => {
    const props = brokerServerProps({
      port: 1,
      controllerPort: 2,
      logDir: '/x',
      overrides: { 'auto.create.topics.enable': 'true', 'log.retention.ms': '1000' },
    });
    expect(props['auto.create.topics.enable']).toBe('true');
    expect(props['log.retention.ms']).toBe('1000');
    expect(BROKER_DEFAULTS['auto.create.topics.enable']).toBe('false');
  });

  it('escapes what java.util.Properties would misread, and parses it back', () => {
    const props = {
      'log.dirs': 'C:\\Users\\me\\kafka logs',
      'key with=sep:chars': ' leading space',
      '#not.a.comment': '!value',
      multi: 'a\nb\tc',
    };
    const text = renderServerProperties(props);
    expect(text).toContain('log.dirs=C:\\\\Users\\\\me\\\\kafka logs\n');
    expect(text).toContain('key\\ with\\=sep\\:chars=\\ leading space\n');
    expect(text).toContain('\\#not.a.comment=\\!value\n');
    expect(text).toContain('multi=a\\nb\\tc\n');
    expect(parseServerProperties(text)).toEqual(props);
  });
});

describe('helpers', () => {
  it('makes Kafka-style cluster ids', () => {
    for (let i = 0; i < 200; i++) {
      const id = randomClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });

  it('finds distinct free ports', async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    for (const p of ports) expect(p).toBeGreaterThan(0);
    expect(new Set(ports).size).toBe(3);
  });

  it('maps property names to apache/kafka image env vars', () => {
    expect(kafkaEnvName('offsets.topic.num.partitions')).toBe('KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS');
    expect(kafkaEnvName('some_key.with-dash')).toBe('KAFKA_SOME__KEY_WITH___DASH');
  });
});
