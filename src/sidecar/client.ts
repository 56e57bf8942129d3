/** The sidecar's loopback protocol as its callers use it: the hook joins its drain, the status command reads it. */
import { networkFailure, OperatorError } from "../errors.ts";
import type { StatusReport } from "./status.ts";

/** The header by which this release's hook joins the sidecar's drain; its value is the hand-off protocol. */
export const HANDOFF_HEADER = "x-envoy-shutdown-handoff";
/** The hand-off protocol: the hook joins with a plain POST and the header, and reads /status (`handoff_protocol`). */
export const HANDOFF_PROTOCOL = 2;

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
    // A redirect is an answer, not a sidecar's: never followed (it could point anywhere).
    const response = await fetch(url, { signal: cancel ? AbortSignal.any([timeout, cancel]) : timeout, redirect: "manual" });
    if (!response.ok) throw new SidecarUnavailable(`${url} answered HTTP ${response.status}`);
    const report = (await response.json().catch(() => undefined)) as StatusReport | undefined;
    if (typeof report?.phase !== "string") throw new SidecarUnavailable(`${url} did not answer with a sidecar's status`);
    return report;
  } catch (error) {
    if (error instanceof SidecarUnavailable) throw error;
    const { code } = error as { code?: string };
    const reason = timeout.aborted ? `no answer within ${timeoutMs} ms` : networkFailure(error);
    throw new SidecarUnavailable(`no sidecar answers at ${url}: ${reason}`, code === "ECONNREFUSED" || code === "ConnectionRefused");
  }
}

type FieldCheck = (value: unknown) => boolean;
const isCount: FieldCheck = (value) => typeof value === "number" && Number.isFinite(value) && value >= 0;
const orNull =
  (check: FieldCheck): FieldCheck =>
  (value) =>
    value === null || check(value);
const isRecord: FieldCheck = (value) => typeof value === "object" && value !== null && !Array.isArray(value);
const isCounts: FieldCheck = (value) => isRecord(value) && Object.values(value as object).every(isCount);
const isString: FieldCheck = (value) => typeof value === "string";
const oneOf =
  (...choices: unknown[]): FieldCheck =>
  (value) =>
    choices.includes(value);

/** The fields of /status a joining hook reads, each with the form it must have. */
const HANDOFF_FIELDS: Record<string, FieldCheck> = {
  handoff_protocol: oneOf(HANDOFF_PROTOCOL),
  drain_owner: oneOf("sidecar", "hook"),
  phase: oneOf("idle", "draining", "drained", "timed_out", "failed"),
  reason: orNull(isString),
  duration_seconds: orNull(isCount),
  open_connections: orNull(isCount),
  min_open_connections: isCount,
  connections_by_listener: isCounts,
  new_connections_by_listener: isCounts,
  reports: isCount,
  envoy_answered: oneOf(true, false),
  envoy_problem: orNull((value) => isRecord(value) && isString((value as { message?: unknown }).message)),
  admin_errors: isCounts,
  check_interval_seconds: isCount,
  drain_timeout_seconds: isCount,
  drain_timeout: isString,
  quiet_period: isString,
  drain_settings: orNull(isRecord),
  traffic: orNull((value) => isRecord(value) && isRecord((value as { by_listener?: unknown }).by_listener)),
};

/**
 * What keeps a hook from joining on a /status answer: a field it reads that is missing or of another form (a
 * previous release's sidecar, or a server that only looks like one), named; undefined when it can join.
 */
export function handoffProblem(report: unknown): string | undefined {
  if (!isRecord(report)) return "answers /status with no JSON object";
  const record = report as Record<string, unknown>;
  const field = Object.keys(HANDOFF_FIELDS).find((name) => !HANDOFF_FIELDS[name]?.(record[name]));
  if (field === undefined) return undefined;
  if (field === "handoff_protocol")
    return record[field] === undefined
      ? "speaks no hand-off protocol of this release (a previous release: its /status has no handoff_protocol)"
      : `speaks hand-off protocol ${JSON.stringify(record[field])}, not ${HANDOFF_PROTOCOL}`;
  return `answers /status without a valid ${field}`;
}
