// C11 reference of BucketTable.acquire (src/shm/bucket-table.ts): the same
// layout (16 int32 fields per bucket, src/shm/layout.ts), the same steps
// (priority gate on WAITERS_ANY, concurrency slots where limited, lazy refill
// claimed by CAS on LAST_REFILL_MS, CAS take on each level leaf first, refund
// on failure) with <stdatomic.h>: sequentially consistent compare-exchange as
// Atomics.compareExchange, relaxed loads where the JS reads plain typed-array
// values. Built with cc -O2 at run time by bucket-take.ts, which runs it in the
// same trial and reports it as the baseline of its acquire cases.
//
// Cases, same shapes as bucket-take.ts: acquire on an endpoint (3 levels) and
// on a service (2 levels) in batches (now read once per batch, chain topped up
// after each batch, every take must succeed); 2 threads on two endpoints of one
// pool and on the same endpoint (total ops/s).
//
// Usage: bucket-take-ref SECONDS  -> one JSON line {"endpoint":..,"service":..,"twoEndpoints":..,"sameEndpoint":..}
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
#define MAX_DEPTH 3
#define MILLI 1000
#define MAX_TOKENS 2000000
#define MAX_BATCH 200000
// Buckets as in bucket-take.ts: pool 0; service a (1) with endpoints x (2), y (3); service b (4) with endpoint x (5).
#define BUCKETS 6
static const int PARENTS[BUCKETS] = {-1, 0, 1, 1, 0, 4};

static _Atomic int32_t state[BUCKETS * FIELDS];
static int32_t chains[BUCKETS * MAX_DEPTH];
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

/** 1 granted, 0 not. */
static int acquire(int leaf, int32_t milli, int priority, int queued, int32_t now) {
  int c = leaf * MAX_DEPTH;
  int gate = queued ? priority : priority + 1;
  int depth = 0;
  for (; depth < MAX_DEPTH; depth++) {
    int b = chains[c + depth];
    if (b < 0) break;
    int base = b * FIELDS;
    if (ld(base + WAITERS_ANY) == 0) continue;
    for (int q = 0; q < gate; q++) if (ld(base + WAITERS_BASE + q) > 0) return 0;
  }
  int mask = 0;
  for (int i = 0; i < depth; i++) {
    int base = chains[c + i] * FIELDS;
    int32_t limit = ld(base + CONCURRENCY);
    if (limit <= 0) continue;
    int ok = 0;
    int32_t cur = ld(base + IN_FLIGHT);
    while (cur < limit) if (cas(base + IN_FLIGHT, &cur, cur + 1)) { ok = 1; break; }
    if (!ok) { release_slots(leaf, mask); return 0; }
    mask |= 1 << i;
  }
  for (int i = 0; i < depth; i++) {
    int b = chains[c + i];
    refill(b, now);
    if (!take(b * FIELDS, milli)) {
      for (int j = 0; j < i; j++) refund(chains[c + j], milli);
      release_slots(leaf, mask);
      return 0;
    }
  }
  return 1;
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
    int cur = b;
    for (int i = 0; i < MAX_DEPTH; i++) { chains[b * MAX_DEPTH + i] = cur; cur = cur >= 0 ? PARENTS[cur] : -1; }
  }
}

/** n takes on leaf, then the chain topped up; returns the grants (all, or the run is void). */
static long batch(int leaf, long n) {
  int32_t now = now_ms();
  long granted = 0;
  for (long i = 0; i < n; i++) granted += acquire(leaf, MILLI, 1, 0, now);
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
  struct rate two = contention(2, 5, seconds);
  struct rate same = contention(2, 2, seconds);
  printf("{\"endpoint\":%.0f,\"service\":%.0f,\"twoEndpoints\":%.0f,\"sameEndpoint\":%.0f,"
         "\"endpointCpu\":%.0f,\"serviceCpu\":%.0f,\"twoEndpointsCpu\":%.0f,\"sameEndpointCpu\":%.0f}\n",
         endpoint.wall, service.wall, two.wall, same.wall, endpoint.cpu, service.cpu, two.cpu, same.cpu);
  return 0;
}
