/**
 * The in-cluster Kubernetes client, loaded only when a drain starts: it is code every idle sidecar would otherwise
 * evaluate at start, and a start that asks JavaScriptCore for 64 heap blocks or more also starts a warm-up thread
 * (about 0.6 MiB of private memory, docs/benchmarks.md).
 */
import type { DrainEvents, OuterDeadline } from "../drain/drain.ts";

/** Drain events that load the in-cluster Events client when the first is posted, and post through it. */
export function podEventsOnDemand(): DrainEvents {
  let loaded: Promise<DrainEvents> | undefined;
  const events = () => {
    loaded ??= Promise.all([import("./pod-events.ts"), import("./in-cluster.ts")]).then(([{ podEvents }, { inClusterTarget }]) =>
      podEvents((signal) => inClusterTarget(process.env, signal)),
    );
    return loaded;
  };
  return {
    started: async (settings) => (await events()).started(settings),
    finished: async (outcome, snapshot) => (await events()).finished(outcome, snapshot),
  };
}

/**
 * The deadline kubelet's grace period sets a drain that starts now, read from the pod's API (bounded, said once when
 * unknown). Outside a Kubernetes pod there is no grace period to read: nothing is loaded, and nothing said.
 */
export function podGraceDeadlineOnDemand(startedAt = Date.now()): Promise<OuterDeadline | undefined> {
  if (!process.env.KUBERNETES_SERVICE_HOST) return Promise.resolve(undefined);
  return import("./grace-period.ts").then(({ podGraceDeadline }) => podGraceDeadline(startedAt));
}
