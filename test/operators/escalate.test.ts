// escalate beyond the topology tests: what it refuses, located.
import { describe, expect, it } from 'vitest';
import { refusal } from '../helpers/topology.ts';

const topology = (from: string, levels = '[{ receiver: primary }]') => `version: 1
name: app
sources:
  - { name: alerts, topic: alerts, schema: vigil.alerting.Alert, timestamp: timestamp }
  - { name: acks, topic: acks, schema: vigil.alerting.Ack, timestamp: timestamp }
operators:
  - name: notify
    type: route
    from: alerts
    route: { receiver: oncall }
  - name: oncall
    type: escalate
    from: ${from}
    levels: ${levels}
`;

describe('escalate config', () => {
  it('reads notifications and acks, and refuses receiver names that are outputs of their own', () => {
    expect(refusal(topology('{ in: alerts, acks: acks }'))).toMatch(/escalate's input 'in' reads vigil\.alerting\.Notification records \(a route operator's output\), but it has vigil\.alerting\.Alert/);
    expect(refusal(topology('{ in: notify.oncall, acks: alerts }'))).toMatch(/escalate's input 'acks' reads vigil\.alerting\.Ack records, but it has vigil\.alerting\.Alert/);
    expect(refusal(topology('{ in: notify.oncall, acks: acks }', '[{ receiver: primary }, { receiver: audit }]'))).toMatch(/test\.yaml:14:\d+: 'audit' is an output of its own/);
    expect(refusal(topology('{ in: notify.oncall, acks: acks }', '[]'))).toMatch(/test\.yaml:14:\d+: .*levels/);
  });
});
