#!/usr/bin/env node
// The installed `tpsd` command: registers tsx so the TypeScript sources run
// as they are, then hands the arguments to src/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
