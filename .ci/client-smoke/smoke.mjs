// `node smoke.mjs URL KEY`: the packed SDK loaded with `import` (plain node, no tsx).
import { createRequire } from 'node:module';
import * as sdk from 'tpsd-client';
import { connect, OUTCOME_TIMED_OUT } from 'tpsd-client';

const check = createRequire(import.meta.url)('./check.cjs');
if (typeof connect !== 'function' || OUTCOME_TIMED_OUT !== 3) throw new Error('client smoke: named imports');
const result = await check(sdk, process.argv[2], process.argv[3]);
console.log(JSON.stringify({ format: 'esm', resolved: import.meta.resolve('tpsd-client'), ...result }));
