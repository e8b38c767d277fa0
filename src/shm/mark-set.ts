// A set of small integers (bucket indexes, tenant slots) emptied in O(1): an
// entry holds the generation it was added in, and clear() starts a new
// generation; the marks are zeroed only when the 32-bit generation wraps.
// The per-tick "visit each once" of the controller, telemetry and the
// tenant readers.
//
// Threads: one owner (a plain Uint32Array, nothing shared); no allocation
// after construction.

export class MarkSet {
  private readonly marks: Uint32Array;
  private gen = 1;

  constructor(size: number) {
    this.marks = new Uint32Array(size);
  }

  /** Empties the set. */
  clear(): void {
    this.gen = (this.gen + 1) >>> 0;
    if (this.gen === 0) { this.marks.fill(0); this.gen = 1; }
  }

  has(i: number): boolean { return this.marks[i] === this.gen; }

  /** Adds i; false when it was in already. */
  add(i: number): boolean {
    if (this.marks[i] === this.gen) return false;
    this.marks[i] = this.gen;
    return true;
  }
}
