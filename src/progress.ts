/** How a drain's polls are shown: a live line on a terminal, one log line per poll elsewhere. */
import type { PollReport } from "./drain.ts";
import { formatDuration } from "./duration.ts";
import { log } from "./log.ts";

/** One log line per poll, with the fields an operator filters on. */
export function logPoll(report: PollReport): void {
  log.info("open connections", {
    open_connections: report.openConnections,
    min_open_connections: report.minOpenConnections,
    elapsed: formatDuration(report.elapsedMs),
    ...(report.remainingMs === undefined ? {} : { remaining: formatDuration(report.remainingMs) }),
  });
}

/** The progress line's text: connections left, threshold, elapsed and deadline. */
function progressText(report: PollReport): string {
  const deadline = report.remainingMs === undefined ? "no deadline" : `${formatDuration(report.remainingMs)} left`;
  return `draining: ${report.openConnections} open connection${report.openConnections === 1 ? "" : "s"} (done at ≤ ${report.minOpenConnections}), ${formatDuration(report.elapsedMs)} elapsed, ${deadline}`;
}

/** A reporter that rewrites one terminal line per poll; call `end` to move past it. */
export function progressLine(stream: NodeJS.WriteStream = process.stderr) {
  let shown = false;
  return {
    update(report: PollReport) {
      stream.write(`\r\x1b[2K${progressText(report)}`);
      shown = true;
    },
    end() {
      if (shown) stream.write("\n");
      shown = false;
    },
  };
}
