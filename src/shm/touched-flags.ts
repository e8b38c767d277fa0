// TOUCHED flags read by their owner on the main thread: one byte per
// (thread, entry), set to 1 by the I/O thread that moved the entry, read by
// Uint32 word (zero words skipped) and cleared byte by byte, only where the
// reader saw a 1. The TOUCHED region of layout.ts (buckets) and the
// per-tenant counters' flags (tenant-counters.ts) are read this way; why no
// count is lost without atomics is in control/touched-keys.ts.
//
// Threads: the I/O threads set; one main-thread owner sweeps.

export class TouchedFlags {
  private readonly bytes: Uint8Array;
  private readonly words: Uint32Array;

  /** `bytes`: threads x `perThread` flags, a multiple of 4 long and 4-aligned. */
  constructor(bytes: Uint8Array, private readonly perThread: number) {
    this.bytes = bytes;
    this.words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
  }

  /** Calls visit(entry) for each flag set since the last sweep (an entry again for each thread that set it), clearing those. */
  sweep(visit: (entry: number) => void): void {
    const { words, bytes, perThread } = this;
    for (let w = 0; w < words.length; w++) {
      if (words[w] === 0) continue;
      for (let i = w << 2, end = i + 4; i < end; i++) {
        if (bytes[i] === 0) continue;
        bytes[i] = 0; // only a flag seen set is cleared
        visit(i % perThread);
      }
    }
  }
}
