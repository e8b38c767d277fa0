// Request ids: uint32, never 0 (0 on RELEASE means "no reply wanted"), and
// never an id that is still waiting for its reply, so a wrap-around cannot
// match a reply to the wrong call.

import { MAX_UINT32 } from '../protocol/opcodes.ts';

export class IdAllocator {
  private last: number;

  /** `start` is the id handed out before the first one (tests use it to force a wrap). */
  constructor(start = 0) {
    this.last = start;
  }

  /** The next free id; `inUse(id)` tells which ids to skip. The caller bounds how many are in use. */
  next(inUse: (id: number) => boolean): number {
    let id = this.last;
    do {
      id = id >= MAX_UINT32 ? 1 : id + 1;
    } while (inUse(id));
    this.last = id;
    return id;
  }
}
