// Cost of per-tick telemetry for a given key count: a real Controller
// (static policy, no I/O threads) over synthetic traffic in shared memory,
// each tick followed by TickRecorder.afterTick() into a fresh SQLite file
// through the writer thread. Prints the main thread's cost per tick (collect
// and post), the writer thread's transaction time per tick, and rows/s.
//
//   npx tsx bench/storage/telemetry-write.ts [keys=10000] [ticks=20] [active=1]
// `active` is the fraction of keys with traffic each tick (idle keys whose
// limit did not change write no row).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/schema.ts';
import { Controller } from '../../src/control/controller.ts';
import { BucketTable } from '../../src/shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../../src/shm/clock.ts';
import { KeyIndex } from '../../src/shm/key-index.ts';
import { C_GRANTED_INDEX, C_REQUESTED_INDEX, allocateShm, counterBase } from '../../src/shm/layout.ts';
import { openTelemetry } from '../../src/storage/telemetry.ts';
import { TickRecorder } from '../../src/daemon/tick-recorder.ts';

const keysWanted = Number(process.argv[2] ?? 10_000);
const ticks = Number(process.argv[3] ?? 20);
const active = Number(process.argv[4] ?? 1);
const perPool = 1000;
const pools = Math.max(1, Math.round(keysWanted / (perPool + 1)));
const dir = mkdtempSync(join(tmpdir(), 'tpsd-bench-'));
const config = validateConfig({
  io_threads: 1, tick_ms: 1000, data_dir: dir, policy: { mode: 'static' }, log: { level: 'silent' },
  pools: Array.from({ length: pools }, (_, p) => ({
    name: `p${p}`, capacity_tps: 1_000_000,
    services: Array.from({ length: perPool }, (_, s) => ({ name: `s${s}`, priority: 'MEDIUM', max_tps: 1000 })),
  })),
}, {});
const keys = KeyIndex.fromConfig(config);
const views = allocateShm(keys.size, 1);
const clock = createClock(hrtimeMs());
BucketTable.initialize(views, keys, clock.nowMs());
const controller = new Controller(views, keys, config, clock, { inference: 'inline' });
const log = { error: (o: object, m: string) => console.error(m, o), warn: (o: object, m: string) => console.error(m, o) };
const telemetry = await openTelemetry(config, log);
const recorder = new TickRecorder(controller, views, keys, config, telemetry.writer);
const stats = telemetry.writer.stats;
const caughtUp = async () => { while (telemetry.writer.backlog > 0) await new Promise((r) => setTimeout(r, 1)); };

let writeMs = 0, rows = 0, mainMs = 0, tickMs = 0;
for (let t = 0; t < ticks; t++) {
  for (let b = 0; b < keys.size; b++) {
    if (Math.random() >= active) continue;
    const c = counterBase(0, b, keys.size);
    views.counters[c + C_REQUESTED_INDEX] += 100;
    views.counters[c + C_GRANTED_INDEX] += 90;
  }
  recorder.beforeTick();
  await controller.tick();
  const before = stats.rows;
  recorder.afterTick();
  await caughtUp();
  if (t > 0) { writeMs += stats.writeLastMs; rows += stats.rows - before; mainMs += recorder.collectLastMs; tickMs += recorder.tickLastMs; }
}
const n = ticks - 1;
console.log(JSON.stringify({
  keys: keys.size, ticks: n, active, rows_per_tick: Math.round(rows / n), controller_tick_ms: +(tickMs / n).toFixed(2),
  main_thread_ms_per_tick: +(mainMs / n).toFixed(2), writer_ms_per_tick: +(writeMs / n).toFixed(2),
  rows_per_s: Math.round(rows / (writeMs / 1000)), db_mb: +(telemetry.db.prepare('PRAGMA page_count').pluck().get() as number * 4096 / 1e6).toFixed(1),
}));
await telemetry.close();
await controller.close();
rmSync(dir, { recursive: true, force: true });
