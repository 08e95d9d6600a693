import { describe, expect, it } from 'vitest';
import { barChartSpec, lineChartSpec, renderSvg } from '../../bench/lib/charts.ts';

describe('charts', () => {
  it('renders a log-scale line chart to SVG headless', async () => {
    const svg = await renderSvg(
      lineChartSpec({
        title: 'Throughput vs series',
        xTitle: 'series',
        yTitle: 'records/s',
        logX: true,
        points: [10, 1000, 100_000].map((x, i) => ({ x, y: 100_000 - i * 20_000, series: 'in-process' })),
      }),
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('Throughput vs series');
    expect(svg).toContain('in-process');
  });

  it('renders a bar chart', async () => {
    const svg = await renderSvg(barChartSpec({ title: 'T', yTitle: 'records/s', bars: [{ label: 'pipe', value: 3, group: 'ceiling' }] }));
    expect(svg).toContain('pipe');
  });
});
