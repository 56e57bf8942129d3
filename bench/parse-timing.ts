/**
 * Times the listener count as the shipped executable runs it (built by the benchmark with the build's flags, so
 * with its JIT policy): `parse-timing <stats URL> <polls>` fetches the stats once per poll, as a drain does, and
 * prints the parse times in milliseconds as JSON, with the default --ignore-listeners patterns. The first poll is the
 * one a drain pays cold.
 */
import { adminOptions } from "../src/cli/options.ts";
import { countListenerConnections } from "../src/envoy/stats.ts";

const [url = "", polls = "10"] = process.argv.slice(2);
const { ignoreListeners } = adminOptions;
const patterns = ignoreListeners.parse(ignoreListeners.default ?? "");

/** Polls and counts; a function, since the build's --bytecode output takes no top-level await. */
async function timePolls(): Promise<void> {
  const times: number[] = [];
  let counted = 0;
  for (let poll = 0; poll < Number(polls); poll++) {
    const body = await (await fetch(url)).text();
    const started = performance.now();
    counted = countListenerConnections(body, patterns).total;
    times.push(performance.now() - started);
  }
  console.log(JSON.stringify({ times, counted }));
}

void timePolls();
