/**
 * The fleet's monitoring examples load as written: the PodMonitor and PrometheusRule against the prometheus-operator's
 * schemas, every alert and dashboard query through Prometheus' own PromQL grammar, and every metric they name is one
 * a running sidecar exports.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { parser } from "@prometheus-io/lezer-promql";
import { fakeEnvoy, fastDrain } from "./support/fixtures.ts";
import { startManager } from "./support/process.ts";

const DIR = new URL("../examples/monitoring/", import.meta.url).pathname;
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML and JSON, read field by field
const load = (file: string): any => Bun.YAML.parse(readFileSync(join(DIR, file), "utf8"));

/** Grafana's own variables, replaced by what they stand for so that Prometheus' grammar reads the query. */
const withoutGrafanaVariables = (expr: string) => expr.replaceAll("$__rate_interval", "5m").replaceAll("$__range", "6h");

/** Parses a PromQL expression; the metric names it selects, or the text around the first syntax error. */
function metricNames(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  let error: number | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError && error === undefined) error = node.from;
      // A selector's metric name is the Identifier right inside its VectorSelector.
      if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector") names.push(expr.slice(node.from, node.to));
    },
  });
  if (error !== undefined)
    throw new Error(`PromQL syntax error at ${error}: ${JSON.stringify(expr.slice(Math.max(0, error - 20), error + 20))}`);
  return names;
}

/** The metric names a sidecar serves, histogram series (`_bucket`, `_sum`, `_count`) included. */
async function exportedNames(): Promise<Set<string>> {
  const fake = await fakeEnvoy({ connections: 0 });
  const sidecar = await startManager(fastDrain(fake.adminAddress).args);
  const text = await (await fetch(`${sidecar.url}/metrics`)).text();
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\w+)$/.exec(line);
    if (type?.[2] === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(`${type[1]}${suffix}`);
    else if (type?.[1]) names.add(type[1]);
  }
  return names;
}

const rules = load("prometheusrule.yaml");
const dashboard = JSON.parse(readFileSync(join(DIR, "grafana-dashboard.json"), "utf8"));
const alertExprs: [string, string][] = rules.spec.groups.flatMap((group: { rules: { alert: string; expr: string }[] }) =>
  group.rules.map((rule) => [rule.alert, rule.expr] as [string, string]),
);
const dashboardExprs: [string, string][] = dashboard.panels.flatMap((panel: { title: string; targets: { expr: string }[] }) =>
  panel.targets.map((target) => [panel.title, withoutGrafanaVariables(target.expr)] as [string, string]),
);

describe("the monitoring examples", () => {
  test("the PodMonitor and the PrometheusRule pass the prometheus-operator's schemas", () => {
    expect(() => new PodMonitor(load("podmonitor.yaml")).validate()).not.toThrow();
    expect(() => new PrometheusRule(rules).validate()).not.toThrow();
    // The PodMonitor scrapes the port the examples name for the sidecar.
    const deployment = Bun.YAML.parse(readFileSync(join(DIR, "..", "envoy-deployment-httpget.yaml"), "utf8")) as {
      spec: { template: { spec: { containers: { name: string; ports?: { name: string }[] }[] } } };
    };
    const sidecar = deployment.spec.template.spec.containers.find((c) => c.name === "shutdown-manager");
    expect(sidecar?.ports?.map((port) => port.name)).toContain(load("podmonitor.yaml").spec.podMetricsEndpoints[0].port);
  });

  test("the schema check would catch a broken rule", () => {
    const broken = structuredClone(rules);
    broken.spec.groups[0].rules[0].for = 5;
    expect(() => new PrometheusRule(broken).validate()).toThrow();
  });

  test("every alert and dashboard query parses, and names only metrics a sidecar exports", async () => {
    const exported = await exportedNames();
    expect(alertExprs.length).toBeGreaterThanOrEqual(6);
    expect(dashboardExprs.length).toBeGreaterThanOrEqual(7);
    for (const [where, expr] of [...alertExprs, ...dashboardExprs]) {
      const names = metricNames(expr);
      expect({ where, names: names.length > 0 }).toEqual({ where, names: true });
      for (const name of names) expect({ where, name, exported: exported.has(name) }).toEqual({ where, name, exported: true });
    }
  });

  test("the checks would catch a misspelled metric and a query that does not parse", async () => {
    const exported = await exportedNames();
    expect(metricNames("rate(envoy_shutdown_manager_drainz_total[5m])").every((name) => exported.has(name))).toBe(false);
    expect(() => metricNames("sum by (le (rate(envoy_shutdown_manager_drain_seconds_bucket[5m]))")).toThrow("PromQL syntax error");
  });
});
