/**
 * Median time of `fn` over nine calls, after a few unmeasured ones: the first calls on a new
 * connection pay for the client's own warm-up, which is not the network's or the server's time.
 */
export async function medianRoundTrip(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b)[4]!;
}
