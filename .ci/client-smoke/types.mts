// Type-checked against the packed .d.ts (ESM consumer): `tsc --noEmit` must pass.
import { connect, OUTCOME_THROTTLED, PermitDeniedError, type Permit, type ReleaseHints } from 'tpsd-client';

export async function use(url: string): Promise<number> {
  const client = await connect(url, { failureMode: 'local', localRate: { tps: 10 } });
  const permit: Permit = await client.acquire('pool/svc', 1, { waitMs: 100 });
  const hints: ReleaseHints = { limit: 100, retryAfterMs: 1000 };
  client.release(permit.lease, OUTCOME_THROTTLED, 10, hints);
  try {
    const res: Response = await client.withPermit('pool/svc', () => fetch('http://127.0.0.1:1/'));
    return res.status;
  } catch (err) {
    if (err instanceof PermitDeniedError) return err.retryAfterMs;
    throw err;
  }
}
