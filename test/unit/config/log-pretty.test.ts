// The terminal form of a log line: time, level, name, message, fields as
// key=value, an error's stack below it; anything that is not a JSON object
// passes through unchanged. When it applies: only on a terminal.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logFormat } from '../../../src/config/log.ts';
import { formatLogLine, prettyStream } from '../../../src/config/log-pretty.ts';

const T = new Date(2030, 0, 2, 3, 4, 5, 67).getTime();

describe('formatLogLine', () => {
  it('writes time, level, name, message and the other fields; leaves out pid and hostname', () => {
    const line = JSON.stringify({ level: 40, time: T, pid: 1, hostname: 'h', name: 'io-1', msg: 'slow reply', key: 'a/b', ms: 12.5,
      note: 'two words', o: { x: 1 } });
    assert.equal(formatLogLine(line, false), '03:04:05.067 WARN  io-1: slow reply key=a/b ms=12.5 note="two words" o={"x":1}\n');
  });

  it('puts an error\'s type and message on the line and its stack below, indented', () => {
    const err = { type: 'TypeError', message: 'boom', stack: 'TypeError: boom\n    at f (a.ts:1:2)\n    at g (b.ts:3:4)' };
    const out = formatLogLine(JSON.stringify({ level: 50, time: T, name: 'tpsd', msg: 'tick failed', err }), false);
    assert.equal(out, '03:04:05.067 ERROR tpsd: tick failed err="TypeError: boom"\n    at f (a.ts:1:2)\n    at g (b.ts:3:4)\n');
  });

  it('colours the level and the fields only when asked', () => {
    const line = JSON.stringify({ level: 30, time: T, msg: 'hi', a: 1 });
    assert.doesNotMatch(formatLogLine(line, false), /\x1b/);
    assert.match(formatLogLine(line, true), /\x1b\[32mINFO /);
  });

  it('passes through what is not a JSON object', () => {
    assert.equal(formatLogLine('plain text', false), 'plain text\n');
    assert.equal(formatLogLine('[1,2]', false), '[1,2]\n');
    assert.equal(formatLogLine('{"broken', true), '{"broken\n');
  });

  it('a stream formats each line of what pino writes', () => {
    const got: string[] = [];
    const s = prettyStream({ write: (x: string) => got.push(x) }, false);
    s.write(`${JSON.stringify({ level: 20, time: T, msg: 'a' })}\n${JSON.stringify({ level: 60, time: T, msg: 'b' })}\n`);
    assert.deepEqual(got, ['03:04:05.067 DEBUG a\n', '03:04:05.067 FATAL b\n']);
  });
});

describe('logFormat', () => {
  it('is pretty only on a terminal, and JSON there with TPSD_LOG_FORMAT=json', () => {
    assert.equal(logFormat({}, true), 'pretty');
    assert.equal(logFormat({ TPSD_LOG_FORMAT: 'json' }, true), 'json');
    assert.equal(logFormat({}, false), 'json');
    assert.equal(logFormat({ TPSD_LOG_FORMAT: 'pretty' }, false), 'json', 'never pretty when stdout is not a terminal');
  });
});
