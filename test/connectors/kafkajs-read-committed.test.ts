// kafkajs 2.2.4 is patched (patches/kafkajs+2.2.4.patch, applied by patch-package on install):
// its read_committed filter let records of aborted transactions through when a fetch's list of
// aborted transactions was not in first-offset order, or when a fetch started after the first
// offsets of several of them. Vigil's exactly-once restore and repartition reads depend on it.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const filterAbortedMessages = require('kafkajs/src/consumer/filterAbortedMessages.js') as (a: {
  messages: Array<Record<string, unknown>>;
  abortedTransactions: Array<{ producerId: string; firstOffset: string }>;
}) => Array<{ offset: string }>;

const ABORT = Buffer.from([0, 0, 0, 0]);
const rec = (offset: number, producerId: string, control = false) => ({
  offset: String(offset),
  key: control ? ABORT : Buffer.from('k'),
  isControlRecord: control,
  batchContext: { producerId, inTransaction: true },
});

describe('kafkajs read_committed filter (patched)', () => {
  it('drops an aborted transaction listed after a later-starting one', () => {
    // Producer 2 aborted offsets 10-11 (marker 12); producer 3 aborted 13-14 (marker 15); the
    // broker lists them by marker, but a list in another order must give the same answer.
    const messages = [rec(9, '1'), rec(10, '2'), rec(11, '2'), rec(12, '2', true), rec(13, '3'), rec(14, '3'), rec(15, '3', true), rec(16, '1')];
    const aborted = [
      { producerId: '3', firstOffset: '13' },
      { producerId: '2', firstOffset: '10' },
    ];
    const kept = filterAbortedMessages({ messages, abortedTransactions: aborted }).filter((m) => !(m as { isControlRecord?: boolean }).isControlRecord);
    expect(kept.map((m) => m.offset)).toEqual(['9', '16']);
  });

  it('drops records of every aborted transaction already open where the fetch starts', () => {
    // A fetch from offset 20 inside two aborted transactions that began at 17 and 18.
    const messages = [rec(20, '5'), rec(21, '4'), rec(22, '4', true), rec(23, '5', true), rec(24, '6')];
    const aborted = [
      { producerId: '4', firstOffset: '17' },
      { producerId: '5', firstOffset: '18' },
    ];
    const kept = filterAbortedMessages({ messages, abortedTransactions: aborted }).filter((m) => !(m as { isControlRecord?: boolean }).isControlRecord);
    expect(kept.map((m) => m.offset)).toEqual(['24']);
  });
});
