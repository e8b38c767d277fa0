// What BucketTable.acquire() returns (bucket-table.ts): GRANTED, or a failure
// packing the bucket that refused and why, ((bucket << 2) | reason) + 1 in an
// int32 (layout.ts asserts every bucket index fits). Pure values: any thread.

/** Why an acquire failed (low 2 bits of a failure result). */
export const FAIL_TOKENS = 0;
export const FAIL_CONCURRENCY = 1;
export const FAIL_PRIORITY = 2;

/** acquire() result for success; anything else encodes (bucket, reason). */
export const GRANTED = 0;

export function failBucket(result: number): number { return (result - 1) >> 2; }
export function failReason(result: number): number { return (result - 1) & 3; }
export function fail(bucket: number, reason: number): number { return ((bucket << 2) | reason) + 1; }
