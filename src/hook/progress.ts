/** The hook's live progress line on a terminal (elsewhere each count is a log line). */
import type { PollReport } from "../drain/drain.ts";
import { holdersText } from "../drain/traffic.ts";
import { formatDuration } from "../duration.ts";

/** The progress line's text: connections left (split by what they carry, counting traffic), elapsed and deadline. */
function progressText(report: PollReport): string {
  const deadline = report.remainingMs === undefined ? "no deadline" : `${formatDuration(report.remainingMs)} left`;
  const open = `${report.openConnections} open connection${report.openConnections === 1 ? "" : "s"}`;
  const held = report.traffic ? `${open}: ${holdersText(report.traffic)}` : `${open} (done at ≤ ${report.minOpenConnections})`;
  return `draining: ${held}, ${formatDuration(report.elapsedMs)} elapsed, ${deadline}`;
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
