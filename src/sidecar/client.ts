/** The sidecar's loopback protocol as its callers use it: the hook joins its drain, the status command reads it. */
import { networkFailure, OperatorError } from "../errors.ts";
import type { StatusReport } from "./status.ts";

/** How long a sidecar may take to answer a status request before it counts as wedged. */
export const SIDECAR_ANSWER_TIMEOUT_MS = 1000;

/** No sidecar answered as one would: nothing listens, it hangs, or it answers something else. */
export class SidecarUnavailable extends OperatorError {
  override name = "SidecarUnavailable";
  constructor(
    message: string,
    /** Nothing listens on the port: no sidecar runs in this pod, which is not worth a warning. */
    readonly refused = false,
  ) {
    super(message);
  }
}

export const sidecarURL = (port: number, path: string) => `http://127.0.0.1:${port}${path}`;

/** Reads /status from the sidecar on 127.0.0.1:<port>, within `timeoutMs`, or until `cancel` aborts. */
export async function fetchStatus(port: number, timeoutMs = SIDECAR_ANSWER_TIMEOUT_MS, cancel?: AbortSignal): Promise<StatusReport> {
  const url = sidecarURL(port, "/status");
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(url, { signal: cancel ? AbortSignal.any([timeout, cancel]) : timeout });
    if (!response.ok) throw new SidecarUnavailable(`${url} answered HTTP ${response.status}`);
    const report = (await response.json()) as StatusReport;
    if (typeof report?.phase !== "string") throw new SidecarUnavailable(`${url} did not answer with a sidecar's status`);
    return report;
  } catch (error) {
    if (error instanceof SidecarUnavailable) throw error;
    const { code } = error as { code?: string };
    const reason = timeout.aborted ? `no answer within ${timeoutMs} ms` : networkFailure(error);
    throw new SidecarUnavailable(`no sidecar answers at ${url}: ${reason}`, code === "ECONNREFUSED" || code === "ConnectionRefused");
  }
}
