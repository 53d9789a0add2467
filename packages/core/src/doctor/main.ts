import { parseDoctorArgs, USAGE } from "./args.js";
import { doctor } from "./run.js";
import { renderReport } from "./render.js";

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  color: boolean;
}

/** Runs `ryw <args>` and returns the exit code: 0 healthy (warnings allowed), 1 a check failed, 2 bad usage. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseDoctorArgs(argv);
  } catch (error) {
    io.stderr(`[ryw] ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.command === "help") {
    io.stdout(USAGE);
    return 0;
  }
  let report;
  try {
    report = await doctor(parsed.options);
  } catch (error) {
    // Only bad input gets here: server problems are reported as failed checks.
    io.stderr(`${(error as Error).message}\n`);
    return 2;
  }
  io.stdout(parsed.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report, io.color));
  return report.ok ? 0 : 1;
}
