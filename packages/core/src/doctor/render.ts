import type { CheckStatus, DoctorReport } from "./types.js";
import { ms } from "./format-values.js";

const MARK: Record<CheckStatus, string> = { pass: "✔", warn: "!", fail: "✘", skip: "–" };
const COLOR: Record<CheckStatus, string> = { pass: "32", warn: "33", fail: "31", skip: "2" };

/** The report as an aligned plain-text table; `color` adds ANSI colors to the markers. */
export function renderReport(report: DoctorReport, color = false): string {
  const paint = (code: string, text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const lines: string[] = ["ryw doctor", ""];
  const names = [["primary", report.nodes.primary], ...report.nodes.replicas.map((r) => [r.name, r.url]), ["redis", report.nodes.redis ?? "(not set: in-memory positions)"]];
  const nameWidth = Math.max(...names.map(([n]) => n!.length));
  for (const [name, url] of names) lines.push(`  ${name!.padEnd(nameWidth)}  ${url}`);
  lines.push("");

  const idWidth = Math.max(5, ...report.checks.map((c) => c.id.length));
  const targetWidth = Math.max(6, ...report.checks.map((c) => c.target.length));
  const indent = " ".repeat(4 + idWidth + 2 + targetWidth + 2);
  lines.push(paint("2", `    ${"CHECK".padEnd(idWidth)}  ${"TARGET".padEnd(targetWidth)}  RESULT`));
  for (const c of report.checks) {
    lines.push(`  ${paint(COLOR[c.status], MARK[c.status])} ${c.id.padEnd(idWidth)}  ${c.target.padEnd(targetWidth)}  ${c.summary}`);
    if (c.note) lines.push(paint("2", `${indent}${c.note}`));
    if (c.fix && c.status !== "pass") lines.push(`${indent}${paint(COLOR[c.status], "fix:")} ${c.fix}`);
  }

  const { pass, warn, fail, skip } = report.counts;
  const tally = [`${pass} passed`, `${warn} warning${warn === 1 ? "" : "s"}`, `${fail} failed`, ...(skip ? [`${skip} skipped`] : [])].join(" · ");
  lines.push("", `${paint(fail ? COLOR.fail : COLOR.pass, fail ? "✘" : "✔")} ${tally} (${ms(report.durationMs)})`);
  return `${lines.join("\n")}\n`;
}
