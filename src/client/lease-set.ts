// The leases granted on one connection and not yet released, bounded: at
// least the last `perGeneration` grants are remembered, at most twice as many
// (a forgotten lease is ended by the daemon's lease TTL; its release is
// dropped).
//
// Single-threaded (owned by one Connection). Built for one add per granted
// acquire and one delete per release, at hundreds of thousands per second,
// also by callers that never release (every lease is then forgotten in
// turn): two generations of open-addressing hash sets in Float64Arrays
// (linear probing, deletion by backward shift, so no tombstones). Adds go to
// the current generation; after `perGeneration` adds the previous one is
// emptied and becomes the current one. So an add costs one probe and nothing
// is evicted one lease at a time: with tens of thousands of leases per
// connection every probe is a cache miss, and evicting the oldest lease on
// each add (a ring beside a Set, as before) paid for two or three of them.
// Lease ids are non-zero uints up to 2^53 - 1; 0 marks a free slot.

export class LeaseSet {
  private current: LeaseTable;
  private previous: LeaseTable;
  private addsInGeneration = 0;

  constructor(private readonly perGeneration: number) {
    if (!Number.isInteger(perGeneration) || perGeneration < 1) throw new RangeError('LeaseSet: perGeneration must be a positive integer');
    this.current = new LeaseTable(perGeneration);
    this.previous = new LeaseTable(perGeneration);
  }

  /** Leases remembered (a lease added in both generations counts twice). */
  get size(): number {
    return this.current.count + this.previous.count;
  }

  /** Remembers `lease` (non-zero). */
  add(lease: number): void {
    if (this.addsInGeneration === this.perGeneration) {
      const emptied = this.previous;
      emptied.clear();
      this.previous = this.current;
      this.current = emptied;
      this.addsInGeneration = 0;
    }
    this.addsInGeneration++;
    this.current.insert(lease);
  }

  has(lease: number): boolean {
    return lease !== 0 && (this.current.find(lease) >= 0 || this.previous.find(lease) >= 0);
  }

  /** Forgets `lease`; true when it was here. */
  delete(lease: number): boolean {
    if (lease === 0) return false;
    const inCurrent = this.current.delete(lease);
    const inPrevious = this.previous.count > 0 && this.previous.delete(lease);
    return inCurrent || inPrevious;
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
    this.addsInGeneration = 0;
  }
}

const MIN_CAPACITY = 64;

/** One generation: a hash set of non-zero uints that grows up to room for `max` at a load of 1/2. */
class LeaseTable {
  count = 0;
  private keys = new Float64Array(MIN_CAPACITY);
  private mask = MIN_CAPACITY - 1;
  private readonly maxCapacity: number;

  constructor(max: number) {
    let cap = MIN_CAPACITY;
    while (cap < max * 2) cap *= 2;
    this.maxCapacity = cap;
  }

  find(lease: number): number {
    const keys = this.keys;
    const mask = this.mask;
    let i = hash(lease) & mask;
    for (;;) {
      const k = keys[i];
      if (k === lease) return i;
      if (k === 0) return -1;
      i = (i + 1) & mask;
    }
  }

  insert(lease: number): void {
    if ((this.count + 1) * 2 > this.keys.length && this.keys.length < this.maxCapacity) this.grow();
    const keys = this.keys;
    const mask = this.mask;
    let i = hash(lease) & mask;
    for (;;) {
      const k = keys[i];
      if (k === lease) return;
      if (k === 0) break;
      i = (i + 1) & mask;
    }
    keys[i] = lease;
    this.count++;
  }

  delete(lease: number): boolean {
    let i = this.find(lease);
    if (i < 0) return false;
    const keys = this.keys;
    const mask = this.mask;
    // Backward shift: move later entries of the probe run into the hole when
    // their home slot does not lie (cyclically) between the hole and them.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const k = keys[j];
      if (k === 0) break;
      const home = hash(k) & mask;
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!between) {
        keys[i] = k;
        i = j;
      }
    }
    keys[i] = 0;
    this.count--;
    return true;
  }

  /** Empties the table and keeps its size (it is refilled at the same rate). */
  clear(): void {
    if (this.count > 0) this.keys.fill(0);
    this.count = 0;
  }

  /**
   * Quadruples the table (load stays <= 1/2) and places every lease again;
   * by 4 rather than 2, as moving a lease costs a cache miss, and a table
   * that fills up moves a third as many leases in all this way.
   */
  private grow(): void {
    const old = this.keys;
    this.keys = new Float64Array(Math.min(old.length * 4, this.maxCapacity));
    this.mask = this.keys.length - 1;
    this.count = 0;
    for (let i = 0; i < old.length; i++) if (old[i] !== 0) this.insert(old[i]);
  }
}

/** Mixes a uint up to 2^53 (low and high 32 bits) into 32 well-spread bits. */
function hash(v: number): number {
  const lo = v >>> 0;
  const hi = (v / 0x100000000) >>> 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
