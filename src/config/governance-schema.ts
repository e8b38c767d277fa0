// The schema of the `governance` section (part of schema.ts's validator):
// human approval of large limit changes. `approve_above` is a step ratio: a
// change of an operator's limit (op 16 LIMITS) by more than that factor, up
// or down, or a rise of a tier's allocation above that factor of its
// approved level, is held until an admin approves it (docs/governance.md).
// Absent or null: off, and nothing is held.

import type { FieldReader, JsonObject } from './field-reader.ts';
import type { GovernanceConfig } from './types.ts';

const GOVERNANCE_KEYS = ['approve_above'];
/** The largest step ratio worth naming: a bigger one holds nothing the bounds on limits let through. */
export const MAX_APPROVE_ABOVE = 1_000_000;

/** The `governance` section: null when absent (off). */
export function readGovernance(r: FieldReader, root: JsonObject): GovernanceConfig | null {
  if (root.governance === undefined || root.governance === null) return null;
  const g = r.object('governance', root.governance, GOVERNANCE_KEYS);
  if (g === undefined) return null;
  return {
    // Required: the section exists to turn governance on. 1 would hold every change.
    approve_above: r.number(g, 'governance', 'approve_above', {
      above: 1, max: MAX_APPROVE_ABOVE, expected: `a number above 1 and at most ${MAX_APPROVE_ABOVE} (a step ratio, e.g. 1.8)`,
    }),
  } as GovernanceConfig;
}
