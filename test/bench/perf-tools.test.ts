import { describe, expect, it } from 'vitest';
import { parseConsumerPerf, parseProducerPerf, propsArgs } from '../../bench/lib/perf-tools.ts';

// Output of Kafka 4.1.1's tools on this project's local broker.
const PRODUCER_OUTPUT = `423665 records sent, 84733.0 records/sec (12.12 MB/sec), 81.3 ms avg latency, 380.0 ms max latency.
500000 records sent, 87260.034904 records/sec (12.48 MB/sec), 79.12 ms avg latency, 380.00 ms max latency, 66 ms 50th, 197 ms 95th, 265 ms 99th, 329 ms 99.9th.
`;

const CONSUMER_OUTPUT = `start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-11-24 16:34:37:827, 2026-11-24 16:34:38:720, 14.3051, 16.0192, 100000, 111982.0829, 505, 388, 36.8689, 257731.9588
`;

describe('parseProducerPerf', () => {
  it('reads the final summary line, skipping progress lines', () => {
    expect(parseProducerPerf(PRODUCER_OUTPUT)).toEqual({
      records: 500000,
      recordsPerSec: 87260.034904,
      mbPerSec: 12.48,
      avgLatencyMs: 79.12,
      maxLatencyMs: 380,
      p50Ms: 66,
      p95Ms: 197,
      p99Ms: 265,
      p999Ms: 329,
    });
  });

  it('takes the last summary when log lines surround it', () => {
    const out = `[2026-11-24 16:34:37,000] WARN something (org.apache.kafka)\n${PRODUCER_OUTPUT}\r\n`;
    expect(parseProducerPerf(out).records).toBe(500000);
  });

  it('fails clearly when there is no summary (e.g. the tool timed out on metadata)', () => {
    expect(() => parseProducerPerf('423665 records sent, 84733.0 records/sec (12.12 MB/sec), 81.3 ms avg latency, 380.0 ms max latency.\n')).toThrow(
      /no final summary line/,
    );
  });
});

describe('parseConsumerPerf', () => {
  it('reads the columns by name', () => {
    expect(parseConsumerPerf(CONSUMER_OUTPUT)).toEqual({
      records: 100000,
      mb: 14.3051,
      recordsPerSec: 111982.0829,
      mbPerSec: 16.0192,
      rebalanceMs: 505,
      fetchMs: 388,
      fetchRecordsPerSec: 257731.9588,
      fetchMbPerSec: 36.8689,
    });
  });

  it('does not depend on the column order', () => {
    const swapped = 'fetch.nMsg.sec, start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec\n' +
      '257731.9588, 2026-11-24 16:34:37:827, 2026-11-24 16:34:38:720, 14.3051, 16.0192, 100000, 111982.0829, 505, 388, 36.8689\n';
    expect(parseConsumerPerf(swapped).fetchRecordsPerSec).toBe(257731.9588);
  });

  it('fails clearly without the stats line or a column', () => {
    expect(() => parseConsumerPerf('WARN nothing consumed\n')).toThrow(/no stats/);
    expect(() => parseConsumerPerf('start.time, end.time\n2026-11-24 16:34:37:827, 2026-11-24 16:34:38:720\n')).toThrow(/data.consumed.in.nMsg/);
  });
});

describe('propsArgs', () => {
  it('renders key=value arguments', () => {
    expect(propsArgs({ acks: 'all', 'batch.size': 1048576 })).toEqual(['acks=all', 'batch.size=1048576']);
  });
});
