// The load loop of one load-worker thread: keeps `pipeline` messages in
// flight per connection (closed loop) or sends them at a fixed arrival rate
// (open loop), and records what comes back.
//
// Threads: one Engine per load worker thread, touched only by that thread.
// The main thread (run-load.ts) steers the phases with messages:
// start (load begins, nothing recorded: warm-up) -> measure (recording)
// -> stop (no new sends; in-flight replies are drained, not recorded).
// The only shared memory is the progress block, where this thread alone
// writes its own running totals (plain stores of single fields; the main
// thread reads them for the progress line and tolerates a stale value).
//
// Latency of a decision = reply arrival - the message's intended send time.
// Closed loop: the intended time is the actual send time. Open loop: message
// k of a connection is due at t0 + k / rate whether or not the previous reply
// is in; when the connection already has `pipeline` messages in flight the
// send waits, and that wait counts as latency (no coordinated omission).

import { Histogram } from './histogram.ts';

/** What a connection driver reports into. */
export interface LaneSink {
  /** `count` decisions with this status (0 granted, 1 denied, -1 echoed, >= 16 error code) of a message intended at `intendedMs`. */
  replies(intendedMs: number, status: number, count: number): void;
  /** `count` requests that failed without a reply from the server (kind: e.g. "closed", "timeout", "local"). */
  failures(intendedMs: number, kind: string, count: number): void;
  /** One message (all its requests) has been answered. */
  complete(): void;
  /** The connection is gone: its in-flight messages will never complete. */
  lost(reason: string): void;
}

/** One connection to the system under test, opened by a driver (ws-lane, sdk-lane, rlf-lane). */
export interface Lane {
  /** Sends message number `seq` of this connection (batch requests). */
  submit(seq: number, intendedMs: number): void;
  close(): Promise<void>;
}

export interface EngineOptions {
  pipeline: number;
  batch: number;
  /** Decisions/s per connection for the open loop; null for the closed loop. */
  ratePerLane: number | null;
}

export const PROGRESS_FIELDS = 3;
export const P_DECISIONS_INDEX = 0;
export const P_ERRORS_INDEX = 1;
export const P_MESSAGES_INDEX = 2;

export interface EngineResult {
  windowS: number;
  messages: number;
  decisions: number;
  granted: number;
  denied: number;
  echoed: number;
  errors: Record<string, number>;
  latency: ReturnType<Histogram['toJSON']>;
  sendLag: ReturnType<Histogram['toJSON']> | null;
  lostConnections: number;
}

interface LaneState {
  lane: Lane | null;
  inFlight: number;
  seq: number;
  nextDueMs: number;
  dead: boolean;
}

type Phase = 'idle' | 'warmup' | 'measure' | 'drain';

export class Engine {
  private phase: Phase = 'idle';
  private readonly lanes: LaneState[] = [];
  private readonly hist = new Histogram();
  private readonly lag: Histogram | null;
  private readonly intervalMs: number;
  private granted = 0;
  private denied = 0;
  private echoed = 0;
  private decisions = 0;
  private messages = 0;
  private errorCount = 0;
  private readonly errors = new Map<string, number>();
  private lostConnections = 0;
  private windowStart = 0;
  private windowEnd = 0;
  private timer: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;

  constructor(private readonly o: EngineOptions, private readonly progress: Float64Array, private readonly progressBase: number) {
    this.lag = o.ratePerLane === null ? null : new Histogram();
    this.intervalMs = o.ratePerLane === null ? 0 : (1000 * o.batch) / o.ratePerLane;
  }

  /** The sink for lane i; the lane itself is attached with attach(). */
  sink(i: number): LaneSink {
    this.lanes[i] = { lane: null, inFlight: 0, seq: 0, nextDueMs: 0, dead: false };
    const st = this.lanes[i];
    return {
      replies: (intendedMs, status, count) => this.record(intendedMs, status, count),
      failures: (intendedMs, kind, count) => this.fail(kind, count),
      complete: () => this.completed(st),
      lost: (reason) => {
        if (st.dead) return;
        st.dead = true;
        if (this.phase === 'drain' || this.phase === 'idle') return;
        this.lostConnections++;
        this.fail(`connection lost: ${reason}`, st.inFlight * this.o.batch);
        st.inFlight = 0;
        this.checkDrained();
      },
    };
  }

  attach(i: number, lane: Lane): void { this.lanes[i].lane = lane; }

  /** Starts the load (warm-up: nothing recorded yet). `offset` staggers the open loop's connections. */
  start(offsets: number[]): void {
    this.phase = 'warmup';
    const now = performance.now();
    this.lanes.forEach((st, i) => {
      if (this.o.ratePerLane === null) {
        for (let k = 0; k < this.o.pipeline; k++) this.send(st, performance.now());
      } else {
        st.nextDueMs = now + this.intervalMs * offsets[i];
      }
    });
    if (this.o.ratePerLane !== null) this.tick();
  }

  measure(): void {
    this.phase = 'measure';
    this.windowStart = performance.now();
  }

  /** Stops sending, waits up to `drainMs` for replies in flight, returns the figures. */
  async stop(drainMs: number): Promise<EngineResult> {
    this.windowEnd = performance.now();
    if (this.phase !== 'measure') this.windowStart = this.windowEnd;
    this.phase = 'drain';
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    if (this.inFlight() > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, drainMs);
        this.drained = () => { clearTimeout(t); resolve(); };
      });
    }
    const left = this.inFlight();
    if (left > 0) this.errors.set('unanswered at the end (drain timeout)', left * this.o.batch);
    return {
      windowS: (this.windowEnd - this.windowStart) / 1000,
      messages: this.messages, decisions: this.decisions, granted: this.granted, denied: this.denied, echoed: this.echoed,
      errors: Object.fromEntries(this.errors), latency: this.hist.toJSON(), sendLag: this.lag?.toJSON() ?? null,
      lostConnections: this.lostConnections,
    };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.lanes.map((st) => st.lane?.close().catch(() => {})));
  }

  private inFlight(): number {
    let n = 0;
    for (const st of this.lanes) if (!st.dead) n += st.inFlight;
    return n;
  }

  private send(st: LaneState, intendedMs: number): void {
    if (st.dead || st.lane === null) return;
    st.inFlight++;
    if (this.lag !== null && this.phase === 'measure') this.lag.record((performance.now() - intendedMs) * 1e6);
    st.lane.submit(st.seq++, intendedMs);
  }

  /** Open loop: sends every message that is due, as far as the in-flight cap allows. */
  private pump(st: LaneState, now: number): void {
    while (st.nextDueMs <= now && st.inFlight < this.o.pipeline && !st.dead) {
      const due = st.nextDueMs;
      st.nextDueMs += this.intervalMs;
      this.send(st, due);
    }
  }

  private readonly tick = (): void => {
    this.timer = null;
    if (this.phase !== 'warmup' && this.phase !== 'measure') return;
    const now = performance.now();
    let next = Infinity;
    for (const st of this.lanes) {
      this.pump(st, now);
      if (!st.dead && st.inFlight < this.o.pipeline && st.nextDueMs < next) next = st.nextDueMs;
    }
    // Lanes at their cap are pumped again as replies free a slot (completed()).
    const delay = next === Infinity ? 1 : Math.max(0, next - performance.now());
    this.timer = setTimeout(this.tick, delay);
  };

  private completed(st: LaneState): void {
    st.inFlight--;
    if (this.phase === 'measure') {
      this.messages++;
      this.progress[this.progressBase + P_MESSAGES_INDEX] = this.messages;
    }
    if (this.phase === 'warmup' || this.phase === 'measure') {
      if (this.o.ratePerLane === null) this.send(st, performance.now());
      else this.pump(st, performance.now());
    } else if (this.phase === 'drain') this.checkDrained();
  }

  private checkDrained(): void {
    if (this.drained !== null && this.inFlight() === 0) { const d = this.drained; this.drained = null; d(); }
  }

  private record(intendedMs: number, status: number, count: number): void {
    if (this.phase !== 'measure') return;
    // Every reply's latency is recorded (error replies too); only answers are decisions.
    this.hist.record((performance.now() - intendedMs) * 1e6, count);
    if (status === 0) this.granted += count;
    else if (status === 1) this.denied += count;
    else if (status === -1) this.echoed += count;
    else { this.addError(`code ${status}`, count); return; }
    this.decisions += count;
    this.progress[this.progressBase + P_DECISIONS_INDEX] = this.decisions;
  }

  private fail(kind: string, count: number): void {
    if (this.phase !== 'measure' || count === 0) return;
    this.addError(kind, count);
  }

  private addError(kind: string, count: number): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + count);
    this.errorCount += count;
    this.progress[this.progressBase + P_ERRORS_INDEX] = this.errorCount;
  }
}
