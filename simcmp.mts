import { readdirSync, readFileSync } from 'node:fs';
const root = process.argv[2];
const { PpoModel } = await import(root + '/src/ppo/model.ts');
const { parseScenario } = await import(root + '/src/sim/scenario.ts');
const { simulate } = await import(root + '/src/sim/simulator.ts');
const { POLICY_NAMES } = await import(root + '/src/control/policies/registry.ts');
const model = PpoModel.load();
const dir = root + '/test/fixtures/scenarios/';
for (const sub of ['', 'throttling/']) for (const f of readdirSync(dir + sub).filter((x: string) => x.endsWith('.json')).sort()) {
  const s = parseScenario(JSON.parse(readFileSync(dir + sub + f, 'utf8')), f);
  const row: string[] = [];
  for (const policy of POLICY_NAMES) { const m = (await simulate(s, { policy, model })).metrics; row.push(`${policy} ${m.reward.toFixed(2)}/${m.served_ratio.toFixed(4)}/${m.min_guarantee_met}`); }
  console.log(sub + f, row.join('  '));
}
