// Type-checked against the packed .d.ts (CommonJS consumer): `tsc --noEmit` must pass.
import sdk = require('tpsd-client');

export async function use(url: string): Promise<sdk.Outcome> {
  const client: sdk.TpsdClient = await sdk.connect(url);
  await client.close();
  return sdk.OUTCOME_TIMED_OUT;
}
