// The controller's tick: every tick_ms one Controller.tick(), followed by its
// telemetry (tick-recorder.ts hands the rows to the writer thread, which
// writes them in one transaction) and the daemon's figures and health
// (daemon-health.ts: is telemetry written, which policy applies) sent to
// every I/O thread for /metrics, /readyz and STATUS. A tick still running when the next is due makes that
// one skip, and so does a tick() the controller itself skipped; both count as
// overruns.
//
// Threads: main thread only. The tick reads the counters the I/O threads
// write to shared memory and writes the bucket rates they read
// (control/controller.ts); nothing here runs on their hot path. With a
// cluster, its report goes out after the tick and is never awaited in it.

import type { Logger } from '../config/log.ts';
import type { Controller } from '../control/controller.ts';
import type { ClusterNode } from './cluster/cluster-node.ts';
import type { DaemonHealthTracker } from './daemon-health.ts';
import type { IoThreads } from './io-threads.ts';
import type { TickRecorder } from './tick-recorder.ts';

export class TickLoop {
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;

  constructor(
    private readonly controller: Controller,
    private readonly recorder: TickRecorder,
    private readonly threads: Pick<IoThreads, 'broadcast'>,
    /** The live overrides in force, for the daemon's figures. */
    private readonly overrideCount: () => number,
    private readonly health: Pick<DaemonHealthTracker, 'check'>,
    private readonly log: Logger,
    /** With a `cluster` section: told after each tick (it sends its report without waiting), its figures go with the daemon's. */
    private readonly cluster: ClusterNode | null = null,
    /** With tenants: forgets idle ones after each tick (tenant-admin.ts). */
    private readonly sweepTenants: (() => void) | null = null,
  ) {}

  start(tickMs: number): void {
    this.timer = setInterval(() => {
      if (this.ticking !== null) { this.recorder.tickOverruns++; return; }
      this.ticking = this.runTick()
        .catch((err) => { this.log.error({ err }, 'controller tick failed'); })
        .finally(() => { this.ticking = null; });
    }, tickMs);
  }

  /** No more ticks from the timer; one already running carries on (lastTick waits for it). */
  stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  /** Waits for the running tick, then runs one more: after the I/O threads exit, it writes their final counts. */
  async lastTick(): Promise<void> {
    await this.ticking;
    await this.runTick().catch((err) => { this.log.error({ err }, 'last controller tick failed'); });
  }

  /** One tick and its telemetry; the figures and the health go to every I/O thread. */
  private async runTick(): Promise<void> {
    this.recorder.beforeTick();
    const before = this.controller.ticks;
    await this.controller.tick();
    if (this.controller.ticks === before) { this.recorder.tickOverruns++; return; }
    this.cluster?.afterTick(this.controller);
    this.sweepTenants?.();
    this.recorder.afterTick();
    const stats = this.recorder.stats(this.overrideCount());
    this.threads.broadcast({ type: 'daemon-stats', stats: this.cluster === null ? stats : { ...stats, cluster: this.cluster.stats() }, health: this.health.check() });
  }
}
