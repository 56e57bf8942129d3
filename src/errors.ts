/** The error vocabulary every wing shares: a failure the operator can act on, and how to say any error in one line. */

/** A failure the operator can act on; its message is the whole story, so the CLI prints it without a stack (exit 1). */
export class OperatorError extends Error {
  override name = "OperatorError";
}

/** The one-line message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A value that is not of the form a setting takes; `expected` says what would be accepted. The CLI names the flag. */
export class InvalidValue extends Error {
  override name = "InvalidValue";
  constructor(readonly expected: string) {
    super(`expected ${expected}`);
  }
}
