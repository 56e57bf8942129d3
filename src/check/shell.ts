/** The simple commands of a `sh -c` script, split into words as the shell would, so a wrapped command line can be read. */

const SHELLS = new Set(["sh", "bash", "ash", "dash", "zsh", "ksh"]);

/** The script of `sh -c '<script>'` (also `-ec`, `-xc`), or undefined when the command line is not one. */
export function shellScript(argv: string[]): string | undefined {
  const shell = (argv[0] ?? "").slice((argv[0] ?? "").lastIndexOf("/") + 1);
  if (!SHELLS.has(shell) || !/^-[a-z]*c[a-z]*$/.test(argv[1] ?? "")) return undefined;
  return argv[2];
}

/**
 * The script's simple commands, each as its words with quotes removed and `$NAME` / `${NAME}` expanded from the
 * environment; a leading `exec` and `NAME=value` assignments (which set the command's environment) are taken off.
 */
export function simpleCommands(script: string, env: Record<string, string>): { argv: string[]; env: Record<string, string> }[] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | undefined;
  const end = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const variable = (from: number): [string, number] => {
    const braced = script[from] === "{";
    const match = (braced ? /^\{(\w+)\}/ : /^\w+/).exec(script.slice(from));
    if (!match) return ["$", from];
    return [env[braced ? (match[1] as string) : match[0]] ?? "", from + match[0].length];
  };
  for (let i = 0; i < script.length; i++) {
    const char = script[i] as string;
    if (char === "'") {
      const close = script.indexOf("'", i + 1);
      word = (word ?? "") + script.slice(i + 1, close < 0 ? undefined : close);
      i = close < 0 ? script.length : close;
    } else if (char === '"') {
      word ??= "";
      for (i++; i < script.length && script[i] !== '"'; i++) {
        if (script[i] === "\\" && '"\\$`'.includes(script[i + 1] ?? "")) word += script[++i];
        else if (script[i] === "$") {
          const [value, next] = variable(i + 1);
          word += value;
          i = next - 1;
        } else word += script[i];
      }
    } else if (char === "\\") word = (word ?? "") + (script[++i] ?? "");
    else if (char === "$") {
      const [value, next] = variable(i + 1);
      word = (word ?? "") + value;
      i = next - 1;
    } else if (/[ \t]/.test(char)) end();
    else if (/[;&|\n]/.test(char)) {
      end();
      commands.push(words);
      words = [];
    } else word = (word ?? "") + char;
  }
  end();
  commands.push(words);
  return commands.flatMap((argv) => {
    const own = { ...env };
    let start = 0;
    for (; start < argv.length; start++) {
      const assignment = /^([A-Za-z_]\w*)=(.*)$/s.exec(argv[start] as string);
      if (argv[start] === "exec") continue;
      if (!assignment) break;
      own[assignment[1] as string] = assignment[2] as string;
    }
    return argv.length > start ? [{ argv: argv.slice(start), env: own }] : [];
  });
}
