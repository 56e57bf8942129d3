/** The address the sidecar listens on: which values can be listened on, and which reach this host's loopback only. */
import { InvalidValue } from "../errors.ts";

/** The host as a URL reads it (IPv4 in any form the resolver takes made dotted, names lower-cased), else undefined. */
function hostOf(address: string): string | undefined {
  return URL.parse(`http://${address.includes(":") && !address.startsWith("[") ? `[${address}]` : address}/`)?.hostname;
}

const DOTTED_IPV4 = /^\d+\.\d+\.\d+\.\d+$/;
/** A DNS name: labels of letters, digits and inner hyphens, an optional root dot. */
const HOST_NAME = /^(?!-)[a-z\d-]+(?<!-)(\.(?!-)[a-z\d-]+(?<!-))*\.?$/;

/**
 * An IP address (IPv6 bracketed or not) or a host name, refused here rather than by the listen: Bun takes an empty
 * hostname as every interface while naming it "localhost", and says of other bad values only an error code.
 */
export function parseServeAddress(address: string): string {
  const host = /^[\w.:[\]-]+$/.test(address) ? hostOf(address) : undefined;
  if (host && (host.startsWith("[") || DOTTED_IPV4.test(host) || HOST_NAME.test(host))) return address;
  throw new InvalidValue("an IP address or a host name, without a port (0.0.0.0 for every interface)");
}

/**
 * Whether a listen address reaches this host's loopback only, in any spelling the resolver takes (`127.1`,
 * `LOCALHOST`, `::ffff:127.0.0.1`): a server there is out of reach of kubelet, which calls the pod's IP.
 */
export function isLoopbackOnly(address: string): boolean {
  const host = hostOf(address) ?? "";
  return host === "localhost" || (DOTTED_IPV4.test(host) && host.startsWith("127.")) || host === "[::1]" || host.startsWith("[::ffff:7f");
}
