/** The address the sidecar listens on: which values can be listened on, and which reach this host's loopback only. */
import { InvalidValue } from "../errors.ts";

/** Dotted-decimal IPv4, the one form every resolver and kubelet read alike. */
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** A DNS name: labels of letters, digits and inner hyphens, the last starting with a letter (so never an address). */
const HOST_NAME = /^((?!-)[a-z\d-]+(?<!-)\.)*[a-z]([a-z\d-]*[a-z\d])?$/i;

/** An IPv6 address, bracketed or not, as a URL writes it (`[::1]`), else undefined. */
function ipv6Of(address: string): string | undefined {
  const inner = /^\[(.*)\]$/.exec(address)?.[1] ?? address;
  return /^[\da-f:.]*:[\da-f:.]*$/i.test(inner) ? URL.parse(`http://[${inner}]/`)?.hostname : undefined;
}

/**
 * An IP address (IPv6 bracketed or not) or a host name, refused here rather than by the listen: Bun takes an empty
 * hostname as every interface while naming it "localhost", and says of other bad values only an error code.
 */
export function parseServeAddress(address: string): string {
  if (IPV4.test(address) || HOST_NAME.test(address) || ipv6Of(address)) return address;
  throw new InvalidValue("an IP address or a host name, without a port (0.0.0.0 for every interface)");
}

/**
 * Whether a listen address reaches this host's loopback only (`127.0.0.1`, `LOCALHOST`, `::ffff:127.0.0.1`): a
 * server there is out of reach of kubelet, which calls the pod's IP.
 */
export function isLoopbackOnly(address: string): boolean {
  if (address.toLowerCase() === "localhost" || (IPV4.test(address) && address.startsWith("127."))) return true;
  const ipv6 = ipv6Of(address);
  return ipv6 === "[::1]" || /^\[::ffff:7f[\da-f]{2}:[\da-f]{1,4}\]$/.test(ipv6 ?? "");
}
