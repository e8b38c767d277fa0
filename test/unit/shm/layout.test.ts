// The shared-memory layout: a thread attaching to a buffer (viewsOf) refuses
// one that allocateShm() did not make for the same layout (wrong size, magic,
// version, bucket or thread count); the load-time invariant helper names the
// relationship that broke.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BUCKET_COUNT_INDEX, MAGIC_INDEX, SHM_MAGIC, SHM_VERSION, THREAD_COUNT_INDEX, VERSION_INDEX,
  allocateShm, assertConstants, computeLayout, viewsOf,
} from '../../../src/shm/layout.ts';

describe('viewsOf (attaching to an existing buffer)', () => {
  it('attaches to a buffer allocateShm made, sharing its memory', () => {
    const owner = allocateShm(3, 2);
    const views = viewsOf(owner.sab, 3, 2);
    assert.equal(views.header[MAGIC_INDEX], SHM_MAGIC);
    assert.equal(views.header[VERSION_INDEX], SHM_VERSION);
    owner.state[5] = 42;
    assert.equal(views.state[5], 42);
  });

  it('refuses a buffer with a wrong magic', () => {
    const owner = allocateShm(3, 2);
    owner.header[MAGIC_INDEX] = 0x12345678;
    assert.throws(() => viewsOf(owner.sab, 3, 2), /magic 0x12345678, not tpsd's 0x74707364/);
  });

  it('refuses a zeroed buffer of the right size (no header written)', () => {
    const sab = new SharedArrayBuffer(computeLayout(3, 2).byteLength);
    assert.throws(() => viewsOf(sab, 3, 2), /magic 0x0, not tpsd's/);
  });

  it('refuses a buffer with another layout version', () => {
    const owner = allocateShm(3, 2);
    owner.header[VERSION_INDEX] = SHM_VERSION + 1;
    assert.throws(() => viewsOf(owner.sab, 3, 2), new RegExp(`layout version ${SHM_VERSION + 1}, this code knows version ${SHM_VERSION}`));
  });

  it('refuses a buffer made for other bucket or thread counts, even of the same size', () => {
    const owner = allocateShm(4, 1);
    owner.header[BUCKET_COUNT_INDEX] = 5;
    assert.throws(() => viewsOf(owner.sab, 4, 1), /holds 5 buckets for 1 threads, attached as 4 for 1/);
    owner.header[BUCKET_COUNT_INDEX] = 4;
    owner.header[THREAD_COUNT_INDEX] = 2;
    assert.throws(() => viewsOf(owner.sab, 4, 1), /holds 4 buckets for 2 threads, attached as 4 for 1/);
  });

  it('refuses a buffer of another size', () => {
    const owner = allocateShm(3, 2);
    assert.throws(() => viewsOf(owner.sab, 3, 1), /shared buffer is \d+ bytes, layout needs \d+/);
  });
});

describe('assertConstants', () => {
  it('passes when the relationship holds and names it when it does not', () => {
    assertConstants(true, 'never shown');
    assert.throws(() => assertConstants(false, 'A * B <= C'), /broken invariant between constants: A \* B <= C/);
  });
});
