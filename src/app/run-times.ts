// The run times of the latest jobs that succeeded on this manager: /system/status reports
// their mean, which the topsis delegation policy of other clusters weighs (a cluster that
// runs this kind of work quickly is preferred). A bounded window, so old jobs fade out.

export class RecentRunTimes {
  private readonly seconds: number[] = [];
  private next = 0;

  constructor(private readonly size = 100) {}

  add(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    if (this.seconds.length < this.size) this.seconds.push(seconds);
    else this.seconds[this.next] = seconds;
    this.next = (this.next + 1) % this.size;
  }

  /** Mean over the window in seconds, or undefined before the first job. */
  mean(): number | undefined {
    if (this.seconds.length === 0) return undefined;
    return this.seconds.reduce((a, s) => a + s, 0) / this.seconds.length;
  }
}

/** Finished jobs reported to `sink` (for /metrics), the succeeded ones' times kept in `times` (for topsis). */
export const recordingRunTimes = (
  sink: { jobFinished(status: 'Succeeded' | 'Failed', seconds: number): void },
  times: RecentRunTimes,
) => ({
  jobFinished(status: 'Succeeded' | 'Failed', seconds: number): void {
    sink.jobFinished(status, seconds);
    if (status === 'Succeeded') times.add(seconds);
  },
});
