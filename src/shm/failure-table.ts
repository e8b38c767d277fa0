// Failed authentications per client address, counted in shared memory so the
// limit holds across I/O threads: they share the port (SO_REUSEPORT), and the
// kernel puts one address's connections on any thread.
//
// Threads: every I/O thread reads and updates the table (the FAILURES region,
// shm/layout.ts) through its own FailureTable object; the main thread only
// writes the seed, once, in allocateShm before any thread attaches. Each slot
// is one 64-bit word (tag, window start, count) changed only by
// Atomics.compareExchange, so a reader never sees half an update and no
// thread ever waits for another: there is no lock. An update that loses a
// race re-reads and tries again, a bounded number of times.
//
// Keys. An address is reduced to what one client controls (an IPv4 address;
// an IPv6 /64, the block a single host is usually given) and hashed with
// HMAC-SHA256 under the random seed: 11 bits pick the address's
// neighbourhood (8 slots, one cache line), 32 bits are its tag. As the seed is
// secret, nobody can choose addresses that land in a given neighbourhood or
// share a victim's tag.
//
// Windows. A slot's window starts at the address's first failure and lasts
// 60.4 to 61.4 s (60 ticks of 1.024 s of the shared clock, from the start of
// the first failure's tick); a failure after that starts a new window. The
// address is blocked while its window's count is at the limit (io/auth.ts), so
// a blocked address waits out the rest of the minute.
//
// A full neighbourhood. A new address takes an empty slot, else one whose
// window has passed, else the slot with the fewest failures (the oldest of
// those). The table never refuses an address and never counts one address's
// failures under another, so filling it locks nobody out: the worst an
// attacker gets from flooding it with addresses is to push out counts lower
// than theirs. Pushing out an address with n failures takes 7 other
// addresses in the same neighbourhood with at least n each, and the newcomer
// then holds the slot with the fewest; so each address evicted costs about as
// many failures as it had, and an attacker with many addresses gets at most
// about twice the guesses the limit allows them. Hash collisions: two
// addresses with the same tag in one neighbourhood share a count (one chance
// in 2^32 per pair, not choosable without the seed). Races: two threads
// inserting the same new address at once may each take a slot; the first
// match is the one counted, so the address is under-counted by at most one
// window's failures on one of them, never another address over-counted. An
// update that loses its race four times in a row is not counted (fail open).

import { createHmac } from 'node:crypto';
import type { Clock } from './clock.ts';
import {
  FAILURE_NEIGHBORHOOD_SLOTS, FAILURE_NEIGHBORHOODS, assertConstants, type ShmViews,
} from './layout.ts';
import { MAX_FAILURES_PER_MINUTE } from '../config/defaults.ts';

// A slot word: TAG (high 32 bits; 0: empty) | START_TICK << COUNT_BITS | COUNT.
/** Failures counted in one window; saturates. */
export const FAILURE_COUNT_BITS = 11;
/** Window start in ticks of 2^FAILURE_TICK_SHIFT ms of the shared clock, modulo 2^FAILURE_TICK_BITS (a 12-day wrap). */
export const FAILURE_TICK_BITS = 20;
export const FAILURE_TICK_SHIFT = 10;
/**
 * A window: 60 ticks of 1.024 s, counted from the start of the tick of the
 * first failure, so it ends 60.4 to 61.4 s after that failure: at least a minute.
 */
export const FAILURE_WINDOW_TICKS = Math.ceil(60_000 / 2 ** FAILURE_TICK_SHIFT) + 1;
const COUNT_MAX = 2 ** FAILURE_COUNT_BITS - 1;
const TICK_MASK = 2 ** FAILURE_TICK_BITS - 1;
const LOW_MASK = 0xffff_ffffn;
/** CAS attempts of one update before it gives up (uncounted). */
const MAX_ATTEMPTS = 4;

assertConstants(FAILURE_TICK_BITS + FAILURE_COUNT_BITS <= 31, 'FAILURE_TICK_BITS + FAILURE_COUNT_BITS <= 31: a slot\'s low word is a non-negative int');
assertConstants(COUNT_MAX > MAX_FAILURES_PER_MINUTE, '2^FAILURE_COUNT_BITS - 1 > MAX_FAILURES_PER_MINUTE (config/defaults.ts): the count saturates above any limit');
assertConstants((FAILURE_WINDOW_TICKS - 1) * 2 ** FAILURE_TICK_SHIFT >= 60_000, 'a window lasts at least 60 s from its first failure, wherever in its tick that fell');
assertConstants(FAILURE_WINDOW_TICKS * 1000 < TICK_MASK, 'a window is far shorter than the tick counter\'s wrap');
// 2^32 ms is a whole number of ticks, so ticks cut from the int32 shared clock wrap cleanly.
assertConstants(32 - FAILURE_TICK_SHIFT >= FAILURE_TICK_BITS, 'ticks cut from the 32-bit shared clock cover FAILURE_TICK_BITS');

export class FailureTable {
  private readonly slots: BigUint64Array;
  private readonly seed: Buffer;

  constructor(views: ShmViews, private readonly clock: Clock) {
    this.slots = views.failureSlots;
    this.seed = Buffer.from(views.failureSeed.slice().buffer);
  }

  /** The peer key of a client address (uWS's text form): tag * FAILURE_NEIGHBORHOODS + neighbourhood. */
  peerOf(address: ArrayBuffer | string): number {
    const text = typeof address === 'string' ? address : Buffer.from(address).toString('latin1');
    const d = createHmac('sha256', this.seed).update(addressKey(text)).digest();
    const tag = d.readUInt32LE(0) || 1;
    return tag * FAILURE_NEIGHBORHOODS + (d.readUInt32LE(4) & (FAILURE_NEIGHBORHOODS - 1));
  }

  /** Failures of `peer` in its current window (0 when it has none). */
  failures(peer: number): number {
    const now = this.tick();
    const base = baseOf(peer), tag = tagOf(peer);
    for (let i = base; i < base + FAILURE_NEIGHBORHOOD_SLOTS; i++) {
      const w = Atomics.load(this.slots, i);
      if (w === 0n) return 0; // slots are never emptied: nothing of this neighbourhood lies beyond
      if (Number(w >> 32n) === tag) return currentCount(Number(w & LOW_MASK), now);
    }
    return 0;
  }

  /** Counts a failure of `peer`; returns its window's count after it (0: lost its race MAX_ATTEMPTS times, uncounted). */
  record(peer: number): number {
    const now = this.tick();
    const base = baseOf(peer), tag = tagOf(peer);
    const high = BigInt(tag) << 32n;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // One pass: the tag's slot, or the slot a new tag would take (see the header).
      let slot = -1, word = 0n, found = false, fewest = Infinity, oldest = -1;
      for (let i = base; i < base + FAILURE_NEIGHBORHOOD_SLOTS; i++) {
        const w = Atomics.load(this.slots, i);
        if (w === 0n) { slot = i; word = 0n; break; }
        if (Number(w >> 32n) === tag) { slot = i; word = w; found = true; break; }
        const low = Number(w & LOW_MASK);
        const count = currentCount(low, now), age = (now - (low >>> FAILURE_COUNT_BITS)) & TICK_MASK;
        if (count < fewest || (count === fewest && age > oldest)) { slot = i; word = w; fewest = count; oldest = age; }
      }
      let next = pack(now, 1);
      if (found) {
        const low = Number(word & LOW_MASK), count = currentCount(low, now);
        if (count > 0) next = pack(low >>> FAILURE_COUNT_BITS, Math.min(COUNT_MAX, count + 1));
      }
      if (Atomics.compareExchange(this.slots, slot, word, high | BigInt(next)) === word) return next & COUNT_MAX;
    }
    return 0;
  }

  private tick(): number {
    return (this.clock.nowMs() >>> FAILURE_TICK_SHIFT) & TICK_MASK;
  }
}

function pack(startTick: number, count: number): number {
  return ((startTick << FAILURE_COUNT_BITS) | count) >>> 0;
}

/** The count of a slot's low word if its window is still open at tick `now`, else 0. */
function currentCount(low: number, now: number): number {
  const age = (now - (low >>> FAILURE_COUNT_BITS)) & TICK_MASK;
  return age < FAILURE_WINDOW_TICKS ? low & COUNT_MAX : 0;
}

/** The first slot of `peer`'s neighbourhood. */
function baseOf(peer: number): number {
  return (peer % FAILURE_NEIGHBORHOODS) * FAILURE_NEIGHBORHOOD_SLOTS;
}

/** `peer`'s tag (never 0: 0 marks an empty slot). */
function tagOf(peer: number): number {
  return Math.floor(peer / FAILURE_NEIGHBORHOODS);
}

/**
 * What one client controls, from uWS's address text: an IPv4 address
 * (also when it comes IPv4-mapped, ::ffff:a.b.c.d), else the IPv6 /64, else
 * the text itself.
 */
export function addressKey(text: string): string {
  if (text.indexOf(':') < 0) return `4:${text}`;
  const groups = ipv6Groups(text.toLowerCase());
  if (groups === null) return `?:${text}`;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `4:${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
  }
  return `6:${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}`;
}

/** The 8 groups of an IPv6 address in any text form (full, '::', a dotted IPv4 tail); null when it is not one. */
function ipv6Groups(text: string): number[] | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (/^\d+\.\d+\.\d+\.\d+$/.test(g)) {
        const b = g.split('.').map(Number);
        if (b.some((x) => x > 255)) return null;
        out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
      } else if (/^[0-9a-f]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return null;
    }
    return out;
  };
  const head = parse(halves[0]), tail = halves.length === 2 ? parse(halves[1]) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
