// The schema of the `rls` section (part of schema.ts's validator): where the
// daemon serves Envoy's rate limit service (gRPC, src/io/rls/) and what it
// answers for a descriptor that names no configured key. Absent: not served.
// Problems are reported through the FieldReader, each naming its path.

import { DEFAULTS } from './defaults.ts';
import type { FieldReader, JsonObject } from './field-reader.ts';
import { RLS_UNKNOWN_KEYS, type RlsConfig } from './types.ts';

const RLS_KEYS = ['host', 'port', 'unknown_keys'];

/** The `rls` section: null when absent (Envoy's rate limit service is not served). */
export function readRls(r: FieldReader, root: JsonObject): RlsConfig | null {
  if (root.rls === undefined || root.rls === null) return null;
  const rls = r.object('rls', root.rls, RLS_KEYS);
  if (rls === undefined) return null;
  const d = DEFAULTS.rls;
  return {
    host: r.string(rls, 'rls', 'host', d.host),
    // Required: the section exists to name a port (0 picks a free one, logged at start).
    port: r.number(rls, 'rls', 'port', { integer: true, min: 0, max: 65535 }),
    unknown_keys: r.oneOf(rls, 'rls', 'unknown_keys', RLS_UNKNOWN_KEYS, d.unknown_keys),
  } as RlsConfig;
}
