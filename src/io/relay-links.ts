// Direct message channels between the I/O threads, for the calls that must
// run on another thread than the one that received them: an HTTP RELEASE of
// a lease another thread holds (http-api.ts), and its reply. The main thread
// makes one MessageChannel per pair of threads at start (relayMesh, called by
// daemon/io-threads.ts) and hands each thread its ends; after that it is
// never involved, so a relay does not wait for the main thread's tick, a
// reload or an admin op.
//
// Threads: relayMesh runs on the main thread before the I/O threads start;
// each RelayLinks is owned by one I/O thread, which closes its ports at stop
// (an open port with a listener would keep the thread alive).

import { MessageChannel, type MessagePort } from 'node:worker_threads';

/** An HTTP RELEASE relayed to the thread holding its lease, and the reply coming back. */
export type HttpRelay =
  | { readonly kind: 'request'; readonly from: number; readonly relayId: number; readonly secret: string | null; readonly request: Uint8Array }
  | { readonly kind: 'reply'; readonly relayId: number; readonly reply: Uint8Array };

/** mesh[i][j]: thread i's end of the channel to thread j (null for i = j). */
export function relayMesh(threads: number): (MessagePort | null)[][] {
  const mesh: (MessagePort | null)[][] = Array.from({ length: threads }, () => new Array<MessagePort | null>(threads).fill(null));
  for (let i = 0; i < threads; i++) {
    for (let j = i + 1; j < threads; j++) {
      const { port1, port2 } = new MessageChannel();
      mesh[i][j] = port1;
      mesh[j][i] = port2;
    }
  }
  return mesh;
}

/** One I/O thread's ends of the mesh. */
export class RelayLinks {
  constructor(private readonly ports: readonly (MessagePort | null)[], onRelay: (relay: HttpRelay) => void) {
    for (const p of ports) p?.on('message', onRelay);
  }

  /** Sends to thread `to`; false when there is no channel to it. */
  send(to: number, relay: HttpRelay): boolean {
    const port = this.ports[to];
    if (port === null || port === undefined) return false;
    port.postMessage(relay);
    return true;
  }

  close(): void {
    for (const p of this.ports) p?.close();
  }
}
