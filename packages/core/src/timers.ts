/**
 * Rejects when `promise` takes longer than `ms`. The timer never keeps the process alive.
 * One promise and one timer per call, without `Promise.race`: this runs twice per routed read,
 * and with a request context active every promise also pays Node's async hooks.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string, makeError?: (message: string) => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const message = `${what} timed out after ${ms} ms`;
      reject(makeError ? makeError(message) : new Error(message));
    }, ms);
    timer.unref();
    // After a timeout the late answer, or rejection, is dropped: never an unhandled rejection.
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
