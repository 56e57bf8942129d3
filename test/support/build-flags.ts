/** The `bun build` flags of `npm run build`, read from package.json so that tests, the benchmark and the image agree. */
import packageJson from "../../package.json";

const script = packageJson.scripts.build;
const words = script.split(/\s+/);

/** The flags between the entry and --outfile, such as --compile --minify --bytecode --compile-jit-policy 10. */
export const BUILD_FLAGS: readonly string[] = words.slice(words.indexOf("src/cli/main.ts") + 1, words.indexOf("--outfile"));
