import { describe, expect, it } from '@jest/globals';
import { createMetrics, metricNames } from '@portcullis/kit';
import { dashboardExpressions, metricOfSeries, readDashboard, sampleSum, seriesSelectedBy } from './dashboard.js';

/** Metrics the code registers: the default process/Node ones (from a real registry) and the catalogue's. */
async function registeredMetrics() {
  const defaults = await createMetrics({ service: 'dashboard-test' }).getMetricsAsJSON();
  const names = new Set<string>(defaults.map(({ name }) => name));
  const histograms = new Set<string>(defaults.filter(({ type }) => String(type) === 'histogram').map(({ name }) => name));
  for (const name of Object.values(metricNames)) {
    names.add(name);
    // The catalogue's `_seconds` metrics are histograms; its `_total` ones counters (kit metrics.test.ts).
    if (name.endsWith('_seconds')) histograms.add(name);
  }
  return { names, histograms };
}

describe('Grafana dashboard (deploy/grafana/portcullis-dashboard.json)', () => {
  const dashboard = readDashboard();

  it('takes its Prometheus data source from a variable, and every panel and query uses it', () => {
    const variable = dashboard.templating.list.find(({ type }) => type === 'datasource');
    expect(variable).toMatchObject({ name: 'datasource', query: 'prometheus' });
    const graphs = dashboard.panels.filter(({ type }) => type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(10);
    for (const panel of graphs) {
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(target.expr).toBeTruthy();
      }
    }
  });

  it('has unique panel ids and lays every panel inside the 24-column grid without overlaps', () => {
    const ids = dashboard.panels.map(({ id }) => id);
    expect(new Set(ids).size).toBe(ids.length);
    const taken = new Map<string, string>();
    const overlaps: string[] = [];
    for (const { gridPos, title } of dashboard.panels) {
      expect(gridPos.x + gridPos.w).toBeLessThanOrEqual(24);
      for (let row = gridPos.y; row < gridPos.y + gridPos.h; row += 1) {
        for (let column = gridPos.x; column < gridPos.x + gridPos.w; column += 1) {
          const cell = `${row}:${column}`;
          const other = taken.get(cell);
          if (other !== undefined) overlaps.push(`${title} overlaps ${other} at ${cell}`);
          taken.set(cell, title);
        }
      }
    }
    expect(overlaps).toEqual([]);
  });

  it('queries only metrics the code registers', async () => {
    const { names, histograms } = await registeredMetrics();
    const queried = dashboardExpressions(dashboard).flatMap(seriesSelectedBy);
    expect(queried.length).toBeGreaterThan(0);
    const unknown = queried.filter((series) => !names.has(metricOfSeries(series, histograms)));
    expect(unknown).toEqual([]);
    // A histogram is only queried through its series, never by its bare name.
    expect(queried.filter((series) => histograms.has(series))).toEqual([]);
  });

  it('shows every Portcullis metric somewhere', async () => {
    const { histograms } = await registeredMetrics();
    const shown = new Set(
      dashboardExpressions(dashboard)
        .flatMap(seriesSelectedBy)
        .map((series) => metricOfSeries(series, histograms)),
    );
    expect(Object.values(metricNames).filter((name) => !shown.has(name))).toEqual([]);
  });
});

describe('sampleSum', () => {
  it('sums the samples of a metric whose labels include the given ones', () => {
    const text = [
      '# TYPE x_total counter',
      'x_total{route="/a",status="200",service="g"} 2',
      'x_total{route="/a",status="403",service="g"} 1',
      'x_total{route="/b",status="200",service="g"} 5',
      'y 7',
    ].join('\n');
    expect(sampleSum(text, 'x_total', { route: '/a' })).toBe(3);
    expect(sampleSum(text, 'x_total', { route: '/a', status: '403' })).toBe(1);
    expect(sampleSum(text, 'x_total')).toBe(8);
    expect(sampleSum(text, 'y')).toBe(7);
    expect(sampleSum(text, 'x_total', { route: '/c' })).toBe(0);
  });
});
