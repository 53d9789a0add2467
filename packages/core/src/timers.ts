/**
 * Rejects when `promise` takes longer than `ms`. The timer never keeps the process alive.
 * One promise and one timer per call, without `Promise.race`: this runs on every routed read
 * (the store lookup), and with a request context active every promise also pays Node's async hooks.
 * `onReject` runs once, just before the returned promise rejects (a timeout, or an error before
 * it), so that a caller's bookkeeping needs no `.catch` layer (one more promise) on top.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string, makeError?: (message: string) => Error, onReject?: (error: unknown) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      onReject?.(error);
      reject(error);
    };
    const timer = setTimeout(() => {
      const message = `${what} timed out after ${ms} ms`;
      fail(makeError ? makeError(message) : new Error(message));
    }, ms);
    timer.unref();
    // After a timeout the late answer, or rejection, is dropped: never an unhandled rejection.
    promise.then(
      (value) => {
        clearTimeout(timer);
        settled = true;
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        fail(error);
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
