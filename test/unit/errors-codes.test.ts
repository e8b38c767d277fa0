// Every error class in src/ derives from CodedError and has a stable code,
// one per class, and docs/errors.md lists exactly those classes and codes
// (as fastify's test/internals/errors.test.js pins its codes to its docs).
// The protocol's numeric codes are pinned to docs/protocol.md by
// test/unit/protocol/errors.test.ts; here only their classes are.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DaemonError, UnreachableError } from '../../src/cli/admin-call.ts';
import { UsageError } from '../../src/cli/args.ts';
import {
  CallTimeoutError, ClientClosedError, ConnectError, DisconnectedError, PermitDeniedError, TpsdClientError,
} from '../../src/client/errors.ts';
import { ConfigError } from '../../src/config/field-reader.ts';
import { ClusterStoreError } from '../../src/daemon/cluster/redis-store.ts';
import {
  IoThreadExitedError, ListenError, NativeUwsMissingError, PortInUseError, RestartNeededError, TooManyIoThreadsError,
} from '../../src/daemon/errors.ts';
import { LimitsError } from '../../src/daemon/live-limits.ts';
import { MalformedReply } from '../../src/loadgen/frames.ts';
import { ModelError } from '../../src/ppo/model.ts';
import { DecodeError } from '../../src/protocol/codec.ts';
import { CodedError } from '../../src/protocol/coded-error.ts';
import { ErrorCode, TpsdError, errorCodeName, errorFromReply } from '../../src/protocol/errors.ts';
import { ScenarioError } from '../../src/sim/scenario.ts';
import { StorageError } from '../../src/storage/db.ts';

/** One instance of each class whose code is a 'TPSD_...' string. */
const STRING_CODED: CodedError[] = [
  new TpsdClientError('x'),
  new PermitDeniedError('pool/svc', 10),
  new DisconnectedError('x'),
  new CallTimeoutError('ACQUIRE', 10),
  new ClientClosedError(),
  new ConnectError('ws://127.0.0.1:1', 'refused'),
  new DecodeError('corrupt', 'x', []),
  new ConfigError(['x']),
  new ScenarioError(['x'], 'x.json'),
  new ModelError('x'),
  new StorageError('x'),
  new NativeUwsMissingError(),
  new PortInUseError('127.0.0.1', 7070),
  new ListenError('127.0.0.1', 7070),
  new TooManyIoThreadsError(99, 64),
  new IoThreadExitedError(0, 1, true),
  new RestartNeededError('x'),
  new ClusterStoreError('x'),
  new UsageError('x'),
  new UnreachableError('x'),
  new MalformedReply('x'),
];
/** One instance of each class whose code is the number of a protocol error reply. */
const PROTOCOL_CODED: CodedError[] = [
  new TpsdError(99, 'x'),
  ...Object.values(ErrorCode).map((code) => errorFromReply(code, 'x')),
  new DaemonError(ErrorCode.UNKNOWN_KEY, 'x'),
  new LimitsError(ErrorCode.BAD_REQUEST, 'x'),
];
/** Error classes that never leave their module (control/policy-runner.ts's FallbackError). */
const INTERNAL = new Set(['FallbackError']);
/** Classes whose `name` was never set, and stays 'Error'. */
const UNNAMED = new Set(['MalformedReply']);

const className = (e: CodedError): string => e.constructor.name;
const doc = fs.readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const section = (start: string, end?: string): string => {
  const from = doc.indexOf(start);
  assert.ok(from >= 0, `docs/errors.md has no "${start}"`);
  const to = end === undefined ? -1 : doc.indexOf(end, from);
  return to < 0 ? doc.slice(from) : doc.slice(from, to);
};

/** Every class in src/ that derives from Error, found by reading the sources. */
function errorClassesInSrc(): Set<string> {
  const src = fileURLToPath(new URL('../../src/', import.meta.url));
  const parentOf = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/\bclass (\w+) extends (\w+)/g)) parentOf.set(m[1], m[2]);
      }
    }
  };
  walk(src);
  const isError = (name: string, seen = 0): boolean =>
    name === 'Error' || (seen < 20 && parentOf.has(name) && isError(parentOf.get(name)!, seen + 1));
  return new Set([...parentOf.keys()].filter((name) => isError(name)));
}

describe('error codes', () => {
  it('every error class in src/ is listed here and derives from CodedError', () => {
    const listed = new Set([...STRING_CODED, ...PROTOCOL_CODED].map(className));
    const found = new Set([...errorClassesInSrc()].filter((name) => !INTERNAL.has(name)));
    found.delete('CodedError');
    assert.deepEqual([...found].sort(), [...listed].sort());
    for (const err of [...STRING_CODED, ...PROTOCOL_CODED]) {
      assert.ok(err instanceof CodedError && err instanceof Error, className(err));
      assert.equal(err.name, UNNAMED.has(className(err)) ? 'Error' : className(err));
    }
  });

  it('each string code is TPSD_..., and no two classes share one', () => {
    const classOf = new Map<string, string>();
    for (const err of STRING_CODED) {
      assert.equal(typeof err.code, 'string', className(err));
      assert.match(String(err.code), /^TPSD_[A-Z0-9]+(?:_[A-Z0-9]+)+$/);
      assert.equal(classOf.get(String(err.code)), undefined, `${err.code} is used by ${classOf.get(String(err.code))} and ${className(err)}`);
      classOf.set(String(err.code), className(err));
    }
  });

  it('the protocol error classes keep the reply\'s number as code', () => {
    for (const err of PROTOCOL_CODED) assert.equal(typeof err.code, 'number', className(err));
    assert.equal(new DaemonError(ErrorCode.OVERLOADED, 'x').code, ErrorCode.OVERLOADED);
  });

  it('docs/errors.md lists exactly the string codes, each with its class', () => {
    const documented = new Map<string, string>();
    for (const m of section('## Error codes', '### ').matchAll(/^\| `(TPSD_[A-Z0-9_]+)` \| `(\w+)` \|/gm)) {
      assert.ok(!documented.has(m[1]), `${m[1]} is listed twice`);
      documented.set(m[1], m[2]);
    }
    const actual = new Map(STRING_CODED.map((err) => [String(err.code), className(err)]));
    assert.deepEqual(Object.fromEntries([...documented].sort()), Object.fromEntries([...actual].sort()));
  });

  it('docs/errors.md lists exactly the protocol error classes, each with its protocol code', () => {
    const table = section('### Errors that carry a protocol code');
    const documented = [...table.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual([...documented].sort(), PROTOCOL_CODED.map(className).sort());
    for (const [name, code] of Object.entries(ErrorCode)) {
      const cls = className(errorFromReply(code, 'x'));
      assert.match(table, new RegExp(`^\\| \`${cls}\` \\| ${code} ${name} \\|`, 'm'), `${cls} is ${code} ${errorCodeName(code)}`);
    }
  });
});
