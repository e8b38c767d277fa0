// The human-readable result of one load run (tpsd bench without --json).

import { errorCodeName } from '../protocol/errors.ts';
import { formatRate, type LoadResult } from './run-load.ts';

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(3));
const int = (v: number) => Math.round(v).toLocaleString('en-US');

/** Error kinds "code 17" get their protocol name. */
function kindName(kind: string): string {
  const m = /^code (\d+)$/.exec(kind);
  return m ? `${kind} ${errorCodeName(Number(m[1]))}` : kind;
}

export function formatResult(r: LoadResult): string {
  const o = r.options;
  const loop = o.rate === null ? 'closed loop' : `open loop at ${formatRate(o.rate)} decisions/s`;
  const rows: [string, string][] = [];
  const isEcho = r.target.server === 'echo';
  rows.push([isEcho ? 'echoed/s' : 'decisions/s', formatRate(r.decisionsPerSec)]);
  rows.push(['messages/s', `${formatRate(r.messagesPerSec)} (${o.batch} request(s) per message)`]);
  if (isEcho) rows.push(['echoed', int(r.echoed)]);
  else {
    rows.push(['granted', int(r.granted)]);
    rows.push(['denied', int(r.denied)]);
  }
  rows.push(['errors', int(r.errors.total)]);
  for (const [k, n] of Object.entries(r.errors.kinds)) rows.push([`  ${kindName(k)}`, int(n)]);
  if (r.lostConnections > 0) rows.push(['lost connections', int(r.lostConnections)]);
  const l = r.latencyMs;
  rows.push(['latency (ms)', `p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}`]);
  if (r.sendLagMs !== null) {
    rows.push(['send lag (ms)', `p50 ${ms(r.sendLagMs.p50)}  p99 ${ms(r.sendLagMs.p99)}  max ${ms(r.sendLagMs.max)} (load generator behind schedule)`]);
  }
  const us = (v: number | null) => (v === null ? '-' : `${v.toFixed(2)} us/decision`);
  rows.push(['CPU, load generator', `${r.cpu.loadgen.seconds.toFixed(2)} s, ${us(r.cpu.loadgen.usPerDecision)}`]);
  if (r.cpu.server !== null) {
    rows.push([`CPU, server pid ${r.cpu.server.pid}`, `${r.cpu.server.seconds.toFixed(2)} s, ${us(r.cpu.server.usPerDecision)}`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const head = `${r.target.url} (${r.target.server}, client ${r.target.client}): ${o.connections} connection(s) x ${o.pipeline} `
    + `in flight x ${o.batch} per message, ${o.keys} key(s), ${loop}, ${r.windowS.toFixed(1)} s measured `
    + `after ${o.warmupS} s warm-up, ${o.threads} load thread(s)`;
  return [head, '', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`), ''].join('\n');
}

/** Warnings that make the figures doubtful, one line each. */
export function warnings(r: LoadResult): string[] {
  const out: string[] = [];
  if (r.decisions === 0) out.push('no decisions were measured');
  if (r.errors.total > 0) out.push(`${r.errors.total} request(s) failed: see "errors"; the rates above count answers only`);
  if (r.options.rate !== null && r.decisionsPerSec < r.options.rate * 0.95) {
    out.push(`achieved ${formatRate(r.decisionsPerSec)} decisions/s, below the asked ${formatRate(r.options.rate)}: the server or this generator could not keep up`);
  }
  return out;
}
