/** Milliseconds as people read them: 0.21 ms, 3.4 ms, 120 ms, 4.5 s. */
export function ms(value: number): string {
  if (value < 1) return `${value.toFixed(2)} ms`;
  if (value < 10) return `${value.toFixed(1)} ms`;
  if (value < 1000) return `${Math.round(value)} ms`;
  const seconds = value / 1000;
  return `${Number.isInteger(seconds) || seconds >= 100 ? Math.round(seconds) : seconds.toFixed(1)} s`;
}

export function bytes(value: bigint | number): string {
  const n = Number(value);
  if (n < 1024) return `${n} bytes`;
  const [size, unit] = n < 1024 ** 2 ? [n / 1024, "kB"] : n < 1024 ** 3 ? [n / 1024 ** 2, "MB"] : [n / 1024 ** 3, "GB"];
  return `${Number.isInteger(size) ? size : size.toFixed(1)} ${unit}`;
}

/** The message of an error and of its causes, without the stack. */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const message = e instanceof Error || (typeof e === "object" && "message" in e) ? String((e as Error).message) : String(e);
    if (message && !parts.some((p) => p.includes(message))) parts.push(message);
  }
  return parts.join(": ") || "unknown error";
}
