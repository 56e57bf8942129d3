/**
 * The pod's Events, loaded only when `--pod-events` asks for them: the Kubernetes client is code every idle sidecar
 * would otherwise evaluate at start, and a start that asks JavaScriptCore for 64 heap blocks or more also starts a
 * warm-up thread (about 0.6 MiB of private memory, docs/benchmarks.md).
 */
import type { DrainEvents } from "../drain/drain.ts";

/** Drain events that load the in-cluster Events client when made, and post through it once it is loaded. */
export function podEventsOnDemand(): DrainEvents {
  const loaded = import("./pod-events.ts").then((module) => module.podEvents(module.inClusterTarget()));
  return {
    started: async (settings) => (await loaded).started(settings),
    finished: async (outcome, snapshot) => (await loaded).finished(outcome, snapshot),
  };
}
