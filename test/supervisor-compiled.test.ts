/** The supervisor (`run`) through the compiled executable: the cases are in support/supervisor-cases.ts. */
import { describe } from "bun:test";
import { compiledExecutable } from "./support/compiled.ts";
import { supervisorCases } from "./support/supervisor-cases.ts";

const cli = [await compiledExecutable()];

describe("through the compiled executable", () => supervisorCases(cli));
