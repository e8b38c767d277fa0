// A millisecond clock that reads the same in every thread of the process.
//
// performance.now() counts from each thread's own start, so it cannot be
// compared across threads. Each thread measures once how far its
// performance.now() is from the process-wide hrtime, and the daemon passes one
// epoch (an hrtime reading in ms) to all threads. nowMs() is then
// "ms since the epoch" as an int32, cheap enough to call per message.

import { performance } from 'node:perf_hooks';

export function hrtimeMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface Clock {
  /** Whole milliseconds since the epoch, wrapped to int32. */
  nowMs(): number;
  /** nowMs() at a performance.now() reading of this thread (one clock read serves both; a manual clock ignores it). */
  msAt(perfMs: number): number;
  /** True when nowMs() is the exact instant (a manual clock), not the floor of a running one. */
  readonly exact?: boolean;
}

export function createClock(epochHrMs: number): Clock {
  // Take the smallest of a few samples to keep the error in microseconds.
  let best = Infinity;
  let offset = 0;
  for (let i = 0; i < 5; i++) {
    const a = performance.now();
    const h = hrtimeMs();
    const b = performance.now();
    if (b - a < best) { best = b - a; offset = h - (a + b) / 2; }
  }
  const base = offset - epochHrMs;
  return {
    nowMs: () => Math.floor(performance.now() + base) | 0,
    msAt: (perfMs: number) => Math.floor(perfMs + base) | 0,
  };
}

/** A clock driven by hand, for the simulator and tests. */
export class ManualClock implements Clock {
  readonly exact = true;
  private t = 0;
  nowMs(): number { return this.t | 0; }
  msAt(): number { return this.t | 0; }
  set(ms: number): void { this.t = ms; }
  advance(ms: number): void { this.t += ms; }
}
