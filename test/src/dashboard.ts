// Reads the Grafana dashboard in deploy/grafana and the Prometheus text format, for the tests that
// check the dashboard queries only metrics the services register.
import { readFileSync } from 'node:fs';

export const dashboardFile = new URL('../../deploy/grafana/portcullis-dashboard.json', import.meta.url).pathname;

export interface DashboardTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: DashboardTarget[];
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: { type: string; name: string; query?: unknown }[] };
  panels: DashboardPanel[];
}

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;
}

/** Every PromQL expression of the dashboard's panels. */
export function dashboardExpressions(dashboard: Dashboard = readDashboard()): string[] {
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? ''));
}

/** The series names an expression selects (`name{…}`); the dashboard always writes a selector. */
export function seriesSelectedBy(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map(([, name = '']) => name);
}

/** The metric a series belongs to: a histogram's `_bucket`, `_sum` and `_count` series are its own. */
export function metricOfSeries(series: string, histograms: ReadonlySet<string>): string {
  const base = series.replace(/_(bucket|sum|count)$/, '');
  return base !== series && histograms.has(base) ? base : series;
}

/** `name → type` of every metric a Prometheus text exposition declares (`# TYPE name type`). */
export function declaredMetrics(exposition: string): Map<string, string> {
  const declared = new Map<string, string>();
  for (const [, name = '', type = ''] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) declared.set(name, type);
  return declared;
}

/** The value of the sample of `name` whose labels include `labels`, summed over the other labels; 0 when none. */
export function sampleSum(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [, sampleName, labelText = '', value = ''] of exposition.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/gm)) {
    if (sampleName !== name) continue;
    const found = new Map([...labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(([, key = '', v = '']) => [key, v]));
    if (Object.entries(labels).every(([key, v]) => found.get(key) === v)) sum += Number(value);
  }
  return sum;
}
