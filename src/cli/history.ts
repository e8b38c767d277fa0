// `tpsd history KEY`: a key's traffic and limit over time from the telemetry
// database (per-tick rows, then 1-minute roll-ups for older times):
// sparklines in the terminal (with the share of releases past the pool's
// slo_ms where releases reported a latency), every stored row as CSV (--csv)
// or JSON (--json), or a PNG plot of limit vs demand vs granted (--png FILE).

import { writeFileSync } from 'node:fs';
import { bucketize, countRows, findKey, rates, readPoints, recordedRange, type Point } from '../storage/queries.ts';
import { runVerb, type VerbSpec } from './args.ts';
import { DB_FLAGS, openHistory } from './data-source.ts';
import { renderChart } from './png-chart.ts';
import { EXIT, EXIT_HELP_DB, Progress, formatDuration, formatTime, num, parseSince, sparkline, table } from './terminal.ts';

export const SPEC: VerbSpec = {
  name: 'history',
  summary: 'Show a key\'s demand, grants, denials, 429s, late releases and limit over time (from the telemetry database).',
  positionals: [{ name: 'KEY', help: 'a pool, service, endpoint, tier or tenant key', required: true }],
  flags: {
    since: { type: 'string', value: 'WHEN', help: 'start: a duration back from now (90s, 15m, 1h, 2d) or a date/time (default 1h)' },
    until: { type: 'string', value: 'WHEN', help: 'end, same forms (default now)' },
    csv: { type: 'boolean', help: 'print every stored row (per tick, or per minute once rolled up) as CSV' },
    json: { type: 'boolean', help: 'print the stored rows as JSON' },
    png: { type: 'string', value: 'FILE', help: 'write a plot of limit vs demand vs granted to FILE (PNG)' },
    width: { type: 'integer', value: 'PX', min: 200, max: 8000, help: 'PNG width (default 1000)' },
    height: { type: 'integer', value: 'PX', min: 120, max: 8000, help: 'PNG height (default 400)' },
    columns: { type: 'integer', value: 'N', min: 10, max: 1000, help: 'sparkline width in characters (default 60)' },
    ...DB_FLAGS,
  },
  details: 'Rates are per second. A key with no traffic and an unchanged limit writes no rows; such\n' +
    'stretches show as zero traffic at the last limit. Where a dry run (enforce: false) granted\n' +
    'tokens it would have denied, a would-deny line (CSV: a would_deny_tps column) shows them.\n' +
    'Where releases reported a latency, a late % line shows the share of them past the pool\'s\n' +
    'upstream.slo_ms (late / releases with a latency) and a late: line the window\'s total; JSON\n' +
    'has late and lateShare per row and the window\'s late {late, latencyCount, share}; CSV has a\n' +
    'late_share column once a row has a late release. Rows written before tpsd counted late\n' +
    'releases read 0 late.\n' +
    'Tiers (pool/service/~tier) have a row every tick they move; a tenant has rows for the ticks\n' +
    'it was among the busiest tenants of its service (docs/tenants.md).\n\n' + EXIT_HELP_DB + '.',
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const key = args.positionals[0];
    const now = Date.now();
    const since = parseSince(args.string('since') ?? '1h', now);
    const until = args.has('until') ? parseSince(args.string('until')!, now, 'until') : now;
    if (until <= since) { process.stderr.write('tpsd history: --until is not after --since\n'); return EXIT.USAGE; }
    const db = openHistory(args, 'history');
    if (typeof db === 'number') return db;
    try {
      const info = findKey(db, key);
      if (info === undefined) {
        process.stderr.write(`tpsd history: no history for key "${key}" in ${db.name}\n`);
        return EXIT.NOT_FOUND;
      }
      const progress = new Progress('tpsd history');
      const total = countRows(db, info.id, since, until);
      progress.note(`reading ${total} rows`);
      const points = readPoints(db, info.id, since, until, (n) => progress.update(n, total));
      progress.done(`read ${points.length} rows`);
      if (points.length === 0) {
        process.stderr.write(`tpsd history: no rows for "${key}" between ${formatTime(since)} and ${formatTime(until)}\n`);
        return EXIT.NO_DATA;
      }
      // Charts cover the recorded part of the window, not the time before the daemon first ran.
      const [from, to] = recordedRange(db, points, since, until);
      if (args.boolean('csv')) process.stdout.write(csv(points));
      else if (args.boolean('json')) process.stdout.write(`${JSON.stringify(jsonOut(key, info.kind, info.pool, since, until, points), null, 2)}\n`);
      else if (!args.has('png')) process.stdout.write(summary(key, info.kind, info.pool, points, from, to, fit(points, from, to, args.number('columns') ?? 60)));
      const file = args.string('png');
      if (file !== undefined) {
        const width = args.number('width') ?? 1000, height = args.number('height') ?? 400;
        progress.note(`drawing ${file}`);
        const buckets = bucketize(points, from, to, fit(points, from, to, Math.max(10, Math.min(width - 90, 600))));
        const r = buckets.map(rates);
        writeFileSync(file, renderChart({
          width, height, title: `${key} (tokens/s)`, xLabels: [formatTime(from), formatTime(to)],
          series: [
            { name: 'limit', color: [214, 39, 40], values: buckets.map((b) => b.limitTps) },
            { name: 'demand', color: [31, 119, 180], values: r.map((x) => x.demand) },
            { name: 'granted', color: [44, 160, 44], values: r.map((x) => x.granted) },
          ],
        }));
        progress.done(`wrote ${file}`);
        if (!args.boolean('csv') && !args.boolean('json')) process.stdout.write(`wrote ${file} (${width}x${height}, ${points.length} rows)\n`);
      }
      return EXIT.OK;
    } finally {
      db.close();
    }
  });
}

/** At most `wanted` buckets, and none narrower than a typical row (else every other bucket is empty). */
function fit(points: readonly Point[], from: number, to: number, wanted: number): number {
  const spans = points.map((p) => p.spanMs).sort((a, b) => a - b);
  const typical = Math.max(1, spans[Math.floor(spans.length / 2)]);
  return Math.max(1, Math.min(wanted, Math.floor((to - from) / typical)));
}

const CSV_HEADER = 'time,ts_ms,span_ms,source,demand_tps,granted_tps,denied_tps,throttled_tps,failed_tps,latency_avg_us,queue_max,in_flight_max,limit_tps';

/** True when a dry run (enforce: false) would have denied some of the key's tokens in the window: history shows would_deny then. */
const hasWouldDeny = (points: readonly Point[]) => points.some((p) => p.wouldDeny > 0);

/** Late releases (latency past the pool's slo_ms) over the releases that reported a latency, in the window; null when none did. */
export function lateTotal(points: readonly Point[]): { late: number; latencyCount: number; share: number } | null {
  let late = 0, latencyCount = 0;
  for (const p of points) { late += p.late; latencyCount += p.latencyCount; }
  return latencyCount > 0 ? { late, latencyCount, share: late / latencyCount } : null;
}

/** --json: the stored rows, each with its late share (null without a latency), and the window's late total. */
function jsonOut(key: string, kind: string, pool: string, since: number, until: number, points: readonly Point[]): unknown {
  return {
    key, kind, pool, since, until, late: lateTotal(points),
    points: points.map((p) => ({ ...p, lateShare: p.latencyCount > 0 ? p.late / p.latencyCount : null })),
  };
}

export function csv(points: readonly Point[]): string {
  const r3 = (x: number) => (Number.isFinite(x) ? String(Math.round(x * 1000) / 1000) : '');
  const dry = hasWouldDeny(points);
  const late = points.some((p) => p.late > 0);
  const lines = points.map((p) => {
    const r = rates(p);
    const cells = [new Date(p.tsMs).toISOString(), p.tsMs, Math.round(p.spanMs), p.source, r3(r.demand), r3(r.granted), r3(r.denied),
      r3(r.throttled), r3(r.failed), r3(r.latencyAvgUs), p.queueMax, p.inFlightMax, r3(p.limitTps)];
    if (dry) cells.push(r3(r.wouldDeny));
    if (late) cells.push(r3(r.lateShare));
    return cells.join(',');
  });
  return `${CSV_HEADER}${dry ? ',would_deny_tps' : ''}${late ? ',late_share' : ''}\n${lines.join('\n')}\n`;
}

function summary(key: string, kind: string, pool: string, points: readonly Point[], since: number, until: number, columns: number): string {
  const buckets = bucketize(points, since, until, columns);
  const r = buckets.map(rates);
  const raw = points.filter((p) => p.source === 'raw').length;
  const rows: string[][] = [['', `${formatTime(since)} .. ${formatTime(until)}`, 'MIN', 'AVG', 'MAX']];
  const line = (name: string, values: number[]) => {
    const finite = values.filter(Number.isFinite);
    const avg = finite.reduce((a, b) => a + b, 0) / Math.max(1, finite.length);
    rows.push([name, sparkline(values), num(Math.min(...finite)), num(avg), num(Math.max(...finite))]);
  };
  line('limit', buckets.map((b) => b.limitTps));
  line('demand', r.map((x) => x.demand));
  line('granted', r.map((x) => x.granted));
  line('denied', r.map((x) => x.denied));
  if (hasWouldDeny(points)) line('would-deny', r.map((x) => x.wouldDeny));
  line('429s', r.map((x) => x.throttled));
  line('failed', r.map((x) => x.failed));
  const late = lateTotal(points);
  // Per column the share of its releases with a latency that were late, in %; blank where none reported one.
  if (late !== null) line('late %', r.map((x) => x.lateShare * 100));
  line('queue', buckets.map((b) => b.queueMax));
  line('in-flight', buckets.map((b) => b.inFlightMax));
  const foot = late === null ? '' : `late: ${late.late} of ${late.latencyCount} releases with a latency past slo_ms (${num(late.share * 100)} %)\n`;
  const head = `${key} (${kind}${kind === 'pool' ? '' : ` in pool ${pool}`}): ${raw} per-tick rows, ${points.length - raw} 1-minute rows; ` +
    `one column = ${formatDuration((until - since) / columns)}; rates per second (queue and in-flight: maxima)\n`;
  return head + table(rows, new Set([2, 3, 4])) + foot;
}
