/** The error vocabulary every wing shares: a failure the operator can act on, and how to say any error in one line. */

/** A failure the operator can act on; its message is the whole story, so the CLI prints it without a stack (exit 1). */
export class OperatorError extends Error {
  override name = "OperatorError";
}

/** The one-line message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Network failures by their system error code, in this program's words rather than the runtime's. */
const NETWORK_FAILURES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ConnectionRefused: "connection refused",
  ECONNRESET: "connection reset",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  ENOTFOUND: "the host name does not resolve",
  EADDRNOTAVAIL: "the address is not one of this machine's",
  EACCES: "permission denied",
  ENOENT: "no such file",
  FailedToOpenSocket: "the socket cannot be opened",
  ConnectionClosed: "the connection closed before an answer",
  Malformed_HTTP_Response: "the answer is not HTTP",
};

/** A failed connection in one line: what its code means, else its code alone (the runtime's message is not ours). */
export function networkFailure(error: unknown): string {
  const { code } = (error ?? {}) as { code?: unknown };
  if (typeof code !== "string") return errorMessage(error);
  return `${NETWORK_FAILURES[code] ?? "failed"} (${code})`;
}

/** A value that is not of the form a setting takes; `expected` says what would be accepted. The CLI names the flag. */
export class InvalidValue extends Error {
  override name = "InvalidValue";
  constructor(readonly expected: string) {
    super(`expected ${expected}`);
  }
}
