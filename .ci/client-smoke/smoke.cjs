// `node smoke.cjs URL KEY`: the packed SDK loaded with `require` (plain node, no tsx).
'use strict';
const sdk = require('tpsd-client');
const { connect } = require('tpsd-client');
const check = require('./check.cjs');

if (typeof connect !== 'function') throw new Error('client smoke: destructured require');
check(sdk, process.argv[2], process.argv[3]).then(
  (result) => console.log(JSON.stringify({ format: 'cjs', resolved: require.resolve('tpsd-client'), ...result })),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
