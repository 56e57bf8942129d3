/**
 * An in-memory Envoy admin API for drain tests on the virtual clock: health checks, a connection count, restarts,
 * and faults that cost what they would over the network (a hang costs the admin timeout). The wire format is
 * covered by the client's tests against the HTTP fake; this one is about decisions and timing.
 */
import { AdminError, type AdminErrorKind } from "../../src/envoy/admin-error.ts";
import type { EnvoyAdmin, ServerState } from "../../src/envoy/client.ts";
import type { ConnectionCount, ConnectionStat } from "../../src/envoy/stats.ts";
import type { VirtualClock } from "./virtual-clock.ts";

export type Operation = "fail" | "ok" | "drain_listeners" | "ready" | "server_info" | "count";

/** How one admin call misbehaves. */
export type MemoryFault = { kind: "hang" } | { kind: "slow"; ms: number } | { kind: Exclude<AdminErrorKind, "unreachable" | "timeout"> };

export interface CallRecord {
  operation: Operation;
  at: number;
  /** The count it answered, for successful counts. */
  total?: number;
  /** Whether Envoy passed health checks when it answered a count. */
  live?: boolean;
  error?: AdminErrorKind;
}

export class MemoryEnvoy implements EnvoyAdmin {
  readonly address = "memory-envoy";
  readonly connectionStat: ConnectionStat = "listener";
  readonly calls: CallRecord[] = [];
  connections: number;
  /** Health checks pass (server.live = 1). */
  live = true;
  /** false: the admin API refuses connections (Envoy exited, or was never there). */
  up = true;
  /** The main listener's downstream_cx_total counter; undefined: stats_matcher drops it. */
  accepted: number | undefined = 0;
  restarts = 0;
  /** Traffic count: requests in flight and upgraded connections among `connections` (all HTTP, prefix ingress_http). */
  requests = 0;
  upgrades = 0;
  /** Traffic count: connections that are not HTTP, on a TCP proxy listener, besides `connections`. */
  nonHttp = 0;
  /** The downstream_rq_total counter, health checks left out; undefined: stats_matcher drops it. */
  requestsArrived: number | undefined = 0;
  /** false: stats_matcher drops downstream_rq_active, so traffic() has no traffic part. */
  requestStats = true;
  /** Faults for the next calls of an operation, used up in order. */
  private readonly faults = new Map<Operation, MemoryFault[]>();
  private everAnswered = false;

  constructor(
    private readonly clock: VirtualClock,
    private readonly timeoutMs: number,
    connections = 0,
  ) {
    this.connections = connections;
  }

  get answered(): boolean {
    return this.everAnswered;
  }

  markAnswered(): void {
    this.everAnswered = true;
  }

  /** Makes the next `times` calls of `operation` misbehave. */
  fault(operation: Operation, fault: MemoryFault, times = 1): void {
    const queue = this.faults.get(operation) ?? [];
    for (let i = 0; i < times; i++) queue.push(fault);
    this.faults.set(operation, queue);
  }

  /** The Envoy process exits: its admin API refuses connections until a restart. */
  exit(): void {
    this.up = false;
  }

  /** A new Envoy process: health checks pass again and connections come back. */
  restart(connections: number): void {
    this.live = true;
    this.up = true;
    this.connections = connections;
    if (this.accepted !== undefined) this.accepted = connections;
    this.restarts += 1;
  }

  /** Successful POSTs of /healthcheck/fail. */
  get failPosts(): number {
    return this.calls.filter((call) => call.operation === "fail" && !call.error).length;
  }

  private async call<T>(operation: Operation, cancel: AbortSignal | undefined, answer: (record: CallRecord) => T): Promise<T> {
    const record: CallRecord = { operation, at: this.clock.now() };
    this.calls.push(record);
    const fault = this.faults.get(operation)?.shift();
    const signal = cancel ?? new AbortController().signal;
    try {
      if (!this.up) throw new AdminError("unreachable", `${operation}: connection refused at ${this.address}`);
      if (fault?.kind === "hang" || (fault?.kind === "slow" && fault.ms >= this.timeoutMs)) {
        await this.clock.sleep(this.timeoutMs, signal);
        throw new AdminError("timeout", `${operation}: no complete answer within ${this.timeoutMs} ms`);
      }
      if (fault?.kind === "slow") await this.clock.sleep(fault.ms, signal);
      // Evaluated when the answer leaves, as a real Envoy answers with its state at that moment.
      if (!this.up) throw new AdminError("unreachable", `${operation}: connection reset at ${this.address}`);
      this.everAnswered = true;
      if (fault && fault.kind !== "slow") throw new AdminError(fault.kind, `${operation}: injected ${fault.kind}`);
      return answer(record);
    } catch (error) {
      record.error = (error as AdminError).kind;
      throw error;
    }
  }

  failHealthChecks(cancel?: AbortSignal): Promise<void> {
    return this.call("fail", cancel, () => {
      this.live = false;
    });
  }

  passHealthChecks(cancel?: AbortSignal): Promise<void> {
    return this.call("ok", cancel, () => {
      this.live = true;
    });
  }

  drainListeners(cancel?: AbortSignal): Promise<void> {
    return this.call("drain_listeners", cancel, () => {});
  }

  ready(cancel?: AbortSignal): Promise<ServerState> {
    return this.call("ready", cancel, () => (this.live ? "LIVE" : "DRAINING"));
  }

  serverState(cancel?: AbortSignal): Promise<ServerState> {
    return this.call("server_info", cancel, () => (this.live ? "LIVE" : "DRAINING"));
  }

  openConnections(_stat?: ConnectionStat, cancel?: AbortSignal): Promise<ConnectionCount> {
    return this.call("count", cancel, (record) => {
      Object.assign(record, { total: this.connections, live: this.live });
      const byListener = new Map(this.connections > 0 ? [["0.0.0.0_8080", this.connections]] : []);
      const accepted = this.accepted === undefined ? undefined : new Map([["0.0.0.0_8080", this.accepted]]);
      return { total: this.connections, byListener, live: this.live, accepted };
    });
  }

  traffic(cancel?: AbortSignal): Promise<ConnectionCount> {
    return this.call("count", cancel, (record) => {
      const total = this.connections + this.nonHttp;
      Object.assign(record, { total, live: this.live });
      const byListener = new Map([
        ["0.0.0.0_8080", this.connections],
        ["0.0.0.0_9443", this.nonHttp],
      ]);
      for (const [id, n] of byListener) if (n === 0) byListener.delete(id);
      const accepted = this.accepted === undefined ? undefined : new Map([["0.0.0.0_8080", this.accepted]]);
      if (!this.requestStats) return { total, byListener, live: this.live, accepted };
      const open = {
        open: this.connections,
        requests: this.requests,
        upgrades: this.upgrades,
        http1: this.connections,
        http2: 0,
        http3: 0,
      };
      const byPrefix = new Map(this.connections > 0 ? [["ingress_http", open]] : []);
      const arrivals = this.requestsArrived === undefined ? undefined : new Map([["ingress_http", this.requestsArrived]]);
      return { total, byListener, live: this.live, accepted, traffic: { byPrefix, nonHttp: this.nonHttp, arrivals } };
    });
  }
}
