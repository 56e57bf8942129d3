/** The supervisor (`run`) through `bun` on the source: the cases are in support/supervisor-cases.ts. */
import { describe } from "bun:test";
import { SOURCE_CLI } from "./support/process.ts";
import { supervisorCases } from "./support/supervisor-cases.ts";

describe("through bun on the source", () => supervisorCases(SOURCE_CLI));
