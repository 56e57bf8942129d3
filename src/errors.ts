/** A mistake in how the program was invoked: reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A failure the user can act on, reported as one line with exit code 1 (no stack trace). */
export class FatalError extends Error {
  override name = "FatalError";
}
