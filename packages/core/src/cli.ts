#!/usr/bin/env node
import { runCli } from "./doctor/main.js";

// Exit explicitly once the output is flushed: a half-closed client socket must not keep a
// health check in CI waiting.
const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
runCli(process.argv.slice(2), { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), color }).then(
  (code) => process.stdout.write("", () => process.exit(code)),
  (error: unknown) => {
    process.stderr.write(`[ryw] ${String((error as Error)?.stack ?? error)}\n`);
    process.exit(2);
  },
);
