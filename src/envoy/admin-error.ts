/** Why an admin request failed: the drain decides on the kind, the operator reads the message. */

/**
 * unreachable: nothing listens at the address (or the socket file is missing); the only kind that may mean Envoy is gone.
 * stats_missing: a well-formed stats answer without the counted stats (Envoy's stats_matcher excludes them).
 */
export type AdminErrorKind = "unreachable" | "timeout" | "http_status" | "network" | "malformed" | "stats_missing";

export const ADMIN_ERROR_KINDS: readonly AdminErrorKind[] = [
  "unreachable",
  "timeout",
  "http_status",
  "network",
  "malformed",
  "stats_missing",
];

export class AdminError extends Error {
  override name = "AdminError";
  constructor(
    readonly kind: AdminErrorKind,
    message: string,
  ) {
    super(message);
  }
}
