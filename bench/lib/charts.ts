// Charts of the scaling curves, rendered headless to SVG: Vega-Lite specs compiled to Vega and
// rendered by Vega's View (renderer 'none' + toSVG: no browser, no canvas needed).
import { View, parse } from 'vega';
import { compile } from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

export interface Point {
  x: number;
  y: number;
  series: string;
}

export interface LineChart {
  title: string;
  xTitle: string;
  yTitle: string;
  points: Point[];
  logX?: boolean;
  logY?: boolean;
}

/** What every chart shares: schema, title, size, a white background. */
function frame(title: string) {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, width: 520, height: 300, background: 'white' } as const;
}

export function lineChartSpec(c: LineChart): TopLevelSpec {
  return {
    ...frame(c.title),
    data: { values: c.points },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: c.xTitle, scale: c.logX ? { type: 'log' } : { zero: true } },
      y: { field: 'y', type: 'quantitative', title: c.yTitle, scale: c.logY ? { type: 'log' } : { zero: true } },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 0 } },
    },
  };
}

export interface BarChart {
  title: string;
  yTitle: string;
  bars: Array<{ label: string; value: number; group: string }>;
}

export function barChartSpec(c: BarChart): TopLevelSpec {
  return {
    ...frame(c.title),
    data: { values: c.bars },
    mark: 'bar',
    encoding: {
      x: { field: 'label', type: 'nominal', title: null, sort: null, axis: { labelAngle: 0 } },
      y: { field: 'value', type: 'quantitative', title: c.yTitle },
      color: { field: 'group', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 0 } },
    },
  };
}

/** Renders a Vega-Lite spec to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vega = compile(spec).spec;
  const view = new View(parse(vega), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
