// The tables of bench:compare, from the results of every trial: per scenario
// the median (and range) of each figure over the trials, per-trial ratios
// (each computed within one trial, then the median), and the targets.

import { SCENARIOS, TARGETS } from './compare-plan.ts';
import type { LoadResult } from '../src/loadgen/run-load.ts';

/** trials[scenario id][trial] = results of that trial by run id. */
export type Trials = Map<string, Record<string, LoadResult>[]>;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function rate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(0);
}

function ms(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function defined(xs: (number | null)[]): number[] {
  return xs.filter((v): v is number => v !== null && Number.isFinite(v));
}

export function scenarioTables(trials: Trials): string {
  const out: string[] = [];
  for (const sc of SCENARIOS) {
    const runs = trials.get(sc.id);
    if (!runs || runs.length === 0) continue;
    out.push(`### ${sc.title}`, '');
    out.push('| system (client) | decisions/s: median (min - max) | messages/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU us/decision | load generator CPU us/decision | vs (median of per-trial ratios) |');
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|---|');
    for (const def of sc.runs) {
      const rs = runs.map((t) => t[def.id]).filter((r): r is LoadResult => r !== undefined);
      if (rs.length === 0) continue;
      const d = rs.map((r) => r.decisionsPerSec);
      const med = (f: (r: LoadResult) => number) => median(rs.map(f));
      const srv = defined(rs.map((r) => r.cpu.server?.usPerDecision ?? null));
      const gen = defined(rs.map((r) => r.cpu.loadgen.usPerDecision));
      const vs = sc.ratios.filter((q) => q.run === def.id).map((q) => {
        const per = defined(runs.map((t) => { try { return q.of(t); } catch { return null; } }));
        return per.length === 0 ? '' : `${median(per).toFixed(2)}x ${q.label}`;
      }).filter((s) => s !== '').join('; ');
      const errors = rs.reduce((a, r) => a + r.errors.total, 0);
      out.push(`| ${def.label} | ${rate(median(d))} (${rate(Math.min(...d))} - ${rate(Math.max(...d))}) | ${rate(med((r) => r.messagesPerSec))} `
        + `| ${ms(med((r) => r.latencyMs.p50))} | ${ms(med((r) => r.latencyMs.p99))} | ${ms(med((r) => r.latencyMs.p999))} | ${errors} `
        + `| ${srv.length ? median(srv).toFixed(2) : '-'} | ${gen.length ? median(gen).toFixed(2) : '-'} | ${vs || '-'} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

export interface TargetOutcome { what: string; value: string; range: string; met: boolean | null }

export function targetOutcomes(trials: Trials): TargetOutcome[] {
  return TARGETS.map((t) => {
    const per = defined((trials.get(t.scenario) ?? []).map((r) => { try { return t.value(r); } catch { return null; } }));
    if (per.length === 0) return { what: t.what, value: 'not measured', range: '', met: null };
    const m = median(per);
    const errors = (trials.get(t.scenario) ?? []).some((r) => Object.values(r).some((x) => x.errors.total > 0 || x.lostConnections > 0));
    return {
      what: t.what, value: `${t.format(m)}${errors ? ' (some runs had errors, see below)' : ''}`,
      range: `${t.format(Math.min(...per))} - ${t.format(Math.max(...per))}`, met: t.met(m),
    };
  });
}

export function targetTable(outcomes: TargetOutcome[]): string {
  const lines = ['| target | measured (median of trials) | range over trials | met |', '|---|--:|--:|---|'];
  for (const o of outcomes) lines.push(`| ${o.what} | ${o.value} | ${o.range} | ${o.met === null ? '-' : o.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

/** Rows with errors or lost connections, which make their figures doubtful. */
export function errorNotes(trials: Trials): string[] {
  const notes: string[] = [];
  for (const [id, runs] of trials) {
    runs.forEach((t, i) => {
      for (const [run, r] of Object.entries(t)) {
        if (r.errors.total > 0 || r.lostConnections > 0) {
          notes.push(`${id}/${run} trial ${i + 1}: ${r.errors.total} errors (${JSON.stringify(r.errors.kinds)}), ${r.lostConnections} lost connections`);
        }
      }
    });
  }
  return notes;
}
