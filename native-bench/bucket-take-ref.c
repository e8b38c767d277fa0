// C11 reference of BucketTable.acquire (src/shm/bucket-table.ts): the same
// layout (16 int32 fields per bucket, src/shm/layout.ts), the same steps
// (priority gate on WAITERS_ANY, concurrency slots where limited, lazy refill
// claimed by CAS on LAST_REFILL_MS, CAS take on each level leaf first, refund
// on failure) with <stdatomic.h>: sequentially consistent compare-exchange as
// Atomics.compareExchange, relaxed loads where the JS reads plain typed-array
// values. Built with cc -O2 at run time by bucket-take.ts, which runs it in the
// same trial and reports it as the baseline of its acquire cases.
//
// The same per-thread allowances too: thread-local (_Thread_local) arrays play
// the part of a BucketTable's private fields. A repeat acquire of a leaf in the
// same millisecond grabs a chunk (doubling from one take, capped per level at
// burst / (ALLOWANCE_SHARE x THREADS)) and keeps the surplus; later takes in
// that millisecond are served from it after relaxed reads of WAITERS_ANY and
// CONCURRENCY on the chain; everything held is given back when `now` changes,
// when a waiter is seen, and before a token failure is reported. Each thread
// touches only its own allowance; the shared buckets only through the CAS
// loops above.
//
// Cases, same shapes as bucket-take.ts: acquire on an endpoint (3 levels) and
// on a service (2 levels) in batches (now read once per batch, chain topped up
// after each batch, every take must succeed); acquire + release on an endpoint
// whose service has a concurrency limit (the single-take path: no allowance);
// 2 threads on two endpoints of one pool and on the same endpoint (total ops/s).
//
// Usage: bucket-take-ref SECONDS  -> one JSON line {"endpoint":..,"service":..,"limited":..,"twoEndpoints":..,"sameEndpoint":..}
// (ops per second of wall time) and the same keys with "Cpu" appended (ops per
// second of the measuring threads' CPU time, CLOCK_THREAD_CPUTIME_ID).

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum {
  TOKENS_MILLI = 0, LAST_REFILL_MS = 1, RATE_MILLI = 2, BURST_MILLI = 3, IN_FLIGHT = 4, CONCURRENCY = 5,
  PRIORITY = 6, PARENT = 7, DEPTH = 8, QUEUE = 9, WAITERS_BASE = 10, WAITERS_ANY = 14, FIELDS = 16,
};
#define ALLOWANCE_SHARE 16
// Counter blocks of the JS table in bucket-take.ts (this thread and two workers): the allowance cap divides by it.
#define THREADS 3
#define MAX_DEPTH 3
#define MILLI 1000
#define MAX_TOKENS 2000000
#define MAX_BATCH 200000
// Buckets as in bucket-take.ts: pool 0; service a (1) with endpoints x (2), y (3); service b (4) with endpoint x (5);
// service c (6, a concurrency limit) with endpoint x (7).
#define BUCKETS 8
static const int PARENTS[BUCKETS] = {-1, 0, 1, 1, 0, 4, 0, 6};
#define LIMITED_SERVICE 6
#define CONCURRENCY_LIMIT 1000000

static _Atomic int32_t state[BUCKETS * FIELDS];
static int32_t chains[BUCKETS * MAX_DEPTH];
// guards[b * GUARDS + 2i], [.. + 2i + 1]: state indices of WAITERS_ANY and CONCURRENCY of the i-th bucket of b's
// chain (a short chain repeats its pool): what a take served from an allowance reads, branch-free.
#define GUARDS (2 * MAX_DEPTH)
static int32_t guards[BUCKETS * GUARDS];
static double epoch_ms;

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
static int32_t now_ms(void) { return (int32_t)(int64_t)(mono_ms() - epoch_ms); }

static inline int32_t ld(int i) { return atomic_load_explicit(&state[i], memory_order_relaxed); }
static inline int cas(int i, int32_t *expected, int32_t desired) { return atomic_compare_exchange_strong(&state[i], expected, desired); }

static void refill(int b, int32_t now) {
  int base = b * FIELDS;
  int32_t last = ld(base + LAST_REFILL_MS);
  int32_t elapsed = (int32_t)((uint32_t)now - (uint32_t)last);
  if (elapsed <= 0) return;
  int64_t add = ((int64_t)elapsed * ld(base + RATE_MILLI)) / 1000;
  if (add <= 0) return;
  if (!cas(base + LAST_REFILL_MS, &last, now)) return;
  int32_t burst = ld(base + BURST_MILLI);
  int32_t cur = ld(base + TOKENS_MILLI);
  for (;;) {
    int64_t sum = (int64_t)cur + add;
    int32_t next = sum < burst ? (int32_t)sum : burst;
    if (next == cur || cas(base + TOKENS_MILLI, &cur, next)) return;
  }
}

static int take(int base, int32_t milli) {
  int32_t cur = ld(base + TOKENS_MILLI);
  for (;;) {
    if (cur < milli) return 0;
    if (cas(base + TOKENS_MILLI, &cur, cur - milli)) return 1;
  }
}

static void refund(int b, int32_t milli) {
  int base = b * FIELDS;
  int32_t burst = ld(base + BURST_MILLI);
  int32_t cur = ld(base + TOKENS_MILLI);
  for (;;) {
    int64_t sum = (int64_t)cur + milli; // as the JS sums in doubles: no int32 overflow
    int32_t next = sum < burst ? (int32_t)sum : burst;
    if (next <= cur || cas(base + TOKENS_MILLI, &cur, next)) return;
  }
}

static void release_slots(int leaf, int mask) {
  for (int i = 0; i < MAX_DEPTH; i++) if (mask & (1 << i)) atomic_fetch_sub(&state[chains[leaf * MAX_DEPTH + i] * FIELDS + IN_FLIGHT], 1);
}

// This thread's allowances (a BucketTable's private fields in the JS).
static _Thread_local int32_t held[BUCKETS];
static _Thread_local int32_t held_leaves[BUCKETS];
static _Thread_local uint8_t listed[BUCKETS];
static _Thread_local int held_count;
static _Thread_local int32_t allowance_ms;
static _Thread_local int32_t epoch = 1;
static _Thread_local int32_t seen_epoch[BUCKETS];
static _Thread_local int32_t chunk[BUCKETS];

static void give_back(int leaf) {
  int32_t milli = held[leaf];
  if (milli == 0) return;
  held[leaf] = 0;
  for (int i = 0; i < MAX_DEPTH; i++) {
    int b = chains[leaf * MAX_DEPTH + i];
    if (b < 0) break;
    refund(b, milli);
  }
}

static void give_back_all(void) {
  int n = held_count;
  held_count = 0;
  for (int i = 0; i < n; i++) {
    int leaf = held_leaves[i];
    listed[leaf] = 0;
    give_back(leaf);
  }
}

static void keep(int leaf, int32_t milli) {
  held[leaf] += milli;
  if (!listed[leaf]) { listed[leaf] = 1; held_leaves[held_count++] = leaf; }
}

/** -1, or the level that failed (nothing taken). */
static int take_chain(int c, int depth, int32_t milli, int32_t now) {
  for (int i = 0; i < depth; i++) {
    int b = chains[c + i];
    refill(b, now);
    if (!take(b * FIELDS, milli)) {
      for (int j = 0; j < i; j++) refund(chains[c + j], milli);
      return i;
    }
  }
  return -1;
}

/** The shared-bucket path: priority gate, slots, then one take or a chunk. 1 granted, 0 not. */
static int acquire_shared(int leaf, int32_t milli, int priority, int queued, int32_t now, int *slot_mask) {
  int c = leaf * MAX_DEPTH;
  int gate = queued ? priority : priority + 1;
  int32_t min_burst = INT32_MAX;
  int plain = 0;
  int depth = 0;
  for (; depth < MAX_DEPTH; depth++) {
    int b = chains[c + depth];
    if (b < 0) break;
    int base = b * FIELDS;
    int32_t burst = ld(base + BURST_MILLI);
    if (burst < min_burst) min_burst = burst;
    if (ld(base + WAITERS_ANY) == 0) continue;
    plain = 1;
    if (held_count > 0) give_back_all();
    for (int q = 0; q < gate; q++) if (ld(base + WAITERS_BASE + q) > 0) return 0;
  }
  int mask = 0;
  for (int i = 0; i < depth; i++) {
    int base = chains[c + i] * FIELDS;
    int32_t limit = ld(base + CONCURRENCY);
    if (limit <= 0) continue;
    plain = 1;
    int ok = 0;
    int32_t cur = ld(base + IN_FLIGHT);
    while (cur < limit) if (cas(base + IN_FLIGHT, &cur, cur + 1)) { ok = 1; break; }
    if (!ok) { release_slots(leaf, mask); return 0; }
    mask |= 1 << i;
  }
  int32_t amount = milli;
  if (seen_epoch[leaf] != epoch) {
    seen_epoch[leaf] = epoch;
    chunk[leaf] = 1;
  } else if (!plain && milli > 0) {
    int64_t k = (int64_t)chunk[leaf] * 2, cap = (min_burst / (ALLOWANCE_SHARE * THREADS)) / milli;
    if (k > cap) k = cap;
    if (k >= 2) { chunk[leaf] = (int32_t)k; amount = (int32_t)(k * milli); }
  }
  int at = take_chain(c, depth, amount, now);
  if (at < 0) {
    if (amount != milli) keep(leaf, amount - milli);
    *slot_mask = mask;
    return 1;
  }
  if (amount != milli) { chunk[leaf] = 1; at = take_chain(c, depth, milli, now); }
  if (at >= 0 && held_count > 0) { give_back_all(); at = take_chain(c, depth, milli, now); }
  if (at >= 0) { release_slots(leaf, mask); return 0; }
  *slot_mask = mask;
  return 1;
}

/** 1 granted, 0 not; *slot_mask: the levels a slot was taken on. */
static int acquire(int leaf, int32_t milli, int priority, int queued, int32_t now, int *slot_mask) {
  if (now != allowance_ms) {
    allowance_ms = now;
    epoch++;
    if (held_count > 0) give_back_all();
  }
  int32_t h = held[leaf];
  if (h != 0) {
    if (h >= milli) {
      const int32_t *g = &guards[leaf * GUARDS];
      int32_t busy = ld(g[0]) | ld(g[1]) | ld(g[2]) | ld(g[3]) | ld(g[4]) | ld(g[5]);
      if (busy == 0) { held[leaf] = h - milli; *slot_mask = 0; return 1; }
      give_back_all();
    } else {
      give_back(leaf);
    }
  }
  return acquire_shared(leaf, milli, priority, queued, now, slot_mask);
}

static void setup(void) {
  epoch_ms = mono_ms();
  int32_t now = now_ms();
  for (int b = 0; b < BUCKETS; b++) {
    int base = b * FIELDS;
    for (int f = 0; f < FIELDS; f++) atomic_store(&state[base + f], 0);
    atomic_store(&state[base + TOKENS_MILLI], MAX_TOKENS * MILLI);
    atomic_store(&state[base + LAST_REFILL_MS], now);
    atomic_store(&state[base + RATE_MILLI], MAX_TOKENS * MILLI);
    atomic_store(&state[base + BURST_MILLI], MAX_TOKENS * MILLI);
    atomic_store(&state[base + PRIORITY], b == 0 ? 4 : 1);
    atomic_store(&state[base + PARENT], PARENTS[b]);
    atomic_store(&state[base + CONCURRENCY], b == LIMITED_SERVICE ? CONCURRENCY_LIMIT : 0);
    int cur = b;
    int gbase = 0;
    for (int i = 0; i < MAX_DEPTH; i++) {
      chains[b * MAX_DEPTH + i] = cur;
      if (cur >= 0) gbase = cur * FIELDS;
      guards[b * GUARDS + 2 * i] = gbase + WAITERS_ANY;
      guards[b * GUARDS + 2 * i + 1] = gbase + CONCURRENCY;
      cur = cur >= 0 ? PARENTS[cur] : -1;
    }
  }
}

/** n takes on leaf (each lease released at once where slots were taken), then the chain topped up; returns the grants (all, or the run is void). */
static long batch(int leaf, long n) {
  int32_t now = now_ms();
  long granted = 0;
  int mask = 0;
  for (long i = 0; i < n; i++) {
    granted += acquire(leaf, MILLI, 1, 0, now, &mask);
    release_slots(leaf, mask);
  }
  for (int b = leaf; b >= 0; b = PARENTS[b]) refund(b, MAX_TOKENS * MILLI);
  if (granted != n) { fprintf(stderr, "bucket-take-ref: %ld of %ld takes failed\n", n - granted, n); exit(1); }
  return granted;
}

struct rate { double wall; double cpu; };

static struct rate measure(int leaf, double seconds) {
  long n = 1024;
  double warm_end = mono_ms() + (seconds * 300 > 200 ? seconds * 300 : 200);
  while (mono_ms() < warm_end) batch(leaf, n);
  double t0 = mono_ms();
  batch(leaf, n);
  double per_op = (mono_ms() - t0) / n;
  n = (long)(10.0 / (per_op > 1e-9 ? per_op : 1e-9));
  if (n < 1) n = 1;
  if (n > MAX_BATCH) n = MAX_BATCH;
  long ops = 0;
  double cpu0 = thread_cpu_s();
  double start = mono_ms(), end;
  do { ops += batch(leaf, n); end = mono_ms(); } while (end - start < seconds * 1000);
  double cpu = thread_cpu_s() - cpu0;
  struct rate r = { ops / ((end - start) / 1000), ops / (cpu > 1e-9 ? cpu : 1e-9) };
  return r;
}

struct thread_arg { int leaf; double seconds; struct rate rate; };

static void *thread_main(void *p) {
  struct thread_arg *a = p;
  a->rate = measure(a->leaf, a->seconds);
  return NULL;
}

static struct rate contention(int leaf1, int leaf2, double seconds) {
  struct thread_arg a = {leaf1, seconds, {0, 0}}, b = {leaf2, seconds, {0, 0}};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, thread_main, &a);
  pthread_create(&tb, NULL, thread_main, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  struct rate r = { a.rate.wall + b.rate.wall, a.rate.cpu + b.rate.cpu };
  return r;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  if (!(seconds > 0)) { fprintf(stderr, "usage: bucket-take-ref SECONDS\n"); return 2; }
  setup();
  struct rate endpoint = measure(2, seconds);
  struct rate service = measure(1, seconds);
  struct rate limited = measure(7, seconds);
  struct rate two = contention(2, 5, seconds);
  struct rate same = contention(2, 2, seconds);
  printf("{\"endpoint\":%.0f,\"service\":%.0f,\"limited\":%.0f,\"twoEndpoints\":%.0f,\"sameEndpoint\":%.0f,"
         "\"endpointCpu\":%.0f,\"serviceCpu\":%.0f,\"limitedCpu\":%.0f,\"twoEndpointsCpu\":%.0f,\"sameEndpointCpu\":%.0f}\n",
         endpoint.wall, service.wall, limited.wall, two.wall, same.wall, endpoint.cpu, service.cpu, limited.cpu, two.cpu, same.cpu);
  return 0;
}
