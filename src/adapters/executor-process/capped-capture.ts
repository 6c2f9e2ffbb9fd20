import { StringDecoder } from 'node:string_decoder';

/**
 * Collects one output stream up to a byte limit, keeping the head. Past the limit the
 * bytes are only counted: a script writing gigabytes must not grow the manager's memory.
 */
export class CappedCapture {
  private readonly chunks: Buffer[] = [];
  private readonly decoder = new StringDecoder('utf8');
  private kept = 0;
  private dropped = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onText?: (text: string) => void,
  ) {}

  get truncated(): boolean {
    return this.dropped > 0;
  }

  push(chunk: Buffer): void {
    const room = this.maxBytes - this.kept;
    const head = room >= chunk.length ? chunk : chunk.subarray(0, Math.max(room, 0));
    if (head.length > 0) {
      this.chunks.push(head);
      this.kept += head.length;
      this.emit(this.decoder.write(head));
    }
    if (head.length < chunk.length) {
      const firstDrop = this.dropped === 0;
      this.dropped += chunk.length - head.length;
      // Followers see the cut once, not per dropped chunk.
      if (firstDrop) this.emit(this.decoder.end() + this.marker());
    }
  }

  /** Bytes the process wrote that never reached here (the spawner stopped forwarding). */
  countDropped(bytes: number): void {
    if (bytes <= 0) return;
    const firstDrop = this.dropped === 0;
    this.dropped += bytes;
    if (firstDrop) this.emit(this.decoder.end() + this.marker());
  }

  /** The captured text; ends with a marker line when bytes were dropped. */
  text(): string {
    const head = Buffer.concat(this.chunks).toString('utf8');
    return this.truncated ? head + this.marker() : head;
  }

  private marker(): string {
    const total = this.kept + this.dropped;
    return `\n[flotilla: output truncated: kept the first ${this.kept} of ${total} bytes]\n`;
  }

  private emit(text: string): void {
    if (!text || !this.onText) return;
    try {
      this.onText(text);
    } catch {
      // A failing log follower must not break the run (this runs in a stream handler).
    }
  }
}
