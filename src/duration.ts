/** Go-syntax durations (`300ms`, `5s`, `1m30s`), the form users copy from Contour manifests. */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const WHOLE = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/** The longest wait a timer can hold (2^31-1 ms, about 24.8 days); a longer one would fire after 1 ms. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** Parses a non-negative Go duration into milliseconds; returns undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  if (!WHOLE.test(text)) return undefined;
  let ms = 0;
  // An exec loop rather than matchAll, whose iterator is more of the runtime for every start to load.
  PART.lastIndex = 0;
  for (let part = PART.exec(text); part; part = PART.exec(text)) ms += Number(part[1]) * (UNIT_MS[part[2] as string] ?? Number.NaN);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Formats milliseconds the way Go prints a duration, rounded to the millisecond: `1m30s`, `250ms`, `0s`. */
export function formatDuration(ms: number): string {
  const rounded = Math.round(ms);
  if (rounded < 1000) return `${rounded === 0 ? "0s" : `${rounded}ms`}`;
  const hours = Math.floor(rounded / 3_600_000);
  const minutes = Math.floor((rounded % 3_600_000) / 60_000);
  const seconds = (rounded % 60_000) / 1000;
  return `${hours ? `${hours}h` : ""}${hours || minutes ? `${minutes}m` : ""}${seconds}s`;
}
