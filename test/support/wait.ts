// Polling for the end-to-end and HTTP tests: things happen in the background (jobs run,
// changes propagate), so a test waits for the state it expects, with a deadline.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns something other than undefined/false; fails naming `what`
 * on timeout. With `tolerateErrors`, a throwing poll counts as "not yet" (a cluster that is
 * restarting) and the last error is reported at the deadline.
 */
export const waitFor = async <T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs: number,
  what = 'condition',
  opts: { intervalMs?: number; tolerateErrors?: boolean } = {},
): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if (!opts.tolerateErrors) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last ? `: ${(last as Error).message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(opts.intervalMs ?? 50);
  }
};
