/** Everything a test starts registers how to undo it here; the preload runs the list after every test, newest first. */

const pending: (() => unknown)[] = [];

/** Registers `undo` to run after the current test, whatever its result. */
export function onTeardown(undo: () => unknown): void {
  pending.push(undo);
}

/** Runs and forgets every registered teardown; one that fails does not stop the others. */
export async function runTeardowns(): Promise<void> {
  for (const undo of pending.splice(0).reverse()) {
    try {
      await undo();
    } catch (error) {
      console.error("teardown failed:", error);
    }
  }
}
