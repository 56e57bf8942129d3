/**
 * What holds a drain that ends on traffic: each HTTP connection manager's requests in flight (short ones busy,
 * long ones long-lived), its idle connections, its upgraded ones, and the connections that are not HTTP.
 */
import type { TrafficCount } from "../envoy/stats.ts";

/** One HTTP connection manager's share of what holds the drain. */
export interface PrefixHolders {
  /** Requests in flight that may be short: one arrived on this prefix within the long-lived bound. */
  busy: number;
  /** HTTP connections that carry no request: they close when Envoy exits, as they would at the deadline. */
  idle: number;
  /** Upgraded connections, and requests in flight for longer than the long-lived bound. */
  longLived: number;
}

export interface TrafficHolders extends PrefixHolders {
  /** Open connections that are not HTTP (TCP proxy, TLS passthrough): they hold the drain as any connection does. */
  nonHttp: number;
  /** The HTTP connection managers with anything open, by prefix. */
  byPrefix: Map<string, PrefixHolders>;
}

/**
 * Splits a traffic count. `arrivedWithin(prefix)` is the number of requests that arrived on a prefix within the
 * long-lived bound, or undefined when the counters have not been watched that long: then every request in flight
 * may be short. A request counts as long-lived only when it must be older than the bound: there are more in flight
 * than have arrived within it.
 */
export function trafficHolders(traffic: TrafficCount, arrivedWithin: (prefix: string) => number | undefined): TrafficHolders {
  const holders: TrafficHolders = { busy: 0, idle: 0, longLived: 0, nonHttp: traffic.nonHttp, byPrefix: new Map() };
  for (const [prefix, { open, requests, upgrades }] of traffic.byPrefix) {
    const busy = Math.min(requests, arrivedWithin(prefix) ?? requests);
    const share = { busy, idle: Math.max(0, open - upgrades - requests), longLived: upgrades + requests - busy };
    holders.byPrefix.set(prefix, share);
    holders.busy += share.busy;
    holders.idle += share.idle;
    holders.longLived += share.longLived;
  }
  return holders;
}

/** "busy 2, idle 5, long-lived 1, non-HTTP 0": the split a poll line and the time-out line give. */
export function holdersText(holders: TrafficHolders): string {
  return `busy ${holders.busy}, idle ${holders.idle}, long-lived ${holders.longLived}, non-HTTP ${holders.nonHttp}`;
}
