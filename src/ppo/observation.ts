// What every allocation policy sees of a pool each tick, learned or not:
// plain data (posted as is to a Piscina inference worker). The controller
// builds it (../control/observation.ts); the PPO features (features.ts) and
// every policy in ../control/policies read it.

export interface ServiceObservation {
  readonly bucket: number;
  readonly key: string;
  /** 0 CRITICAL .. 3 LOW. */
  readonly priority: number;
  readonly minTps: number;
  readonly maxTps: number;
  /** Tokens requested per second over the last tick (arrivals, not retries). */
  readonly demandTps: number;
  readonly grantedTps: number;
  readonly deniedTps: number;
  /** Upstream 429s (RELEASE outcome 2) per second. */
  readonly throttledTps: number;
  /** Requests waiting for tokens right now. */
  readonly queue: number;
  readonly inFlight: number;
  readonly latencyMs: number;
  /** The refill rate in force (the previous allocation). */
  readonly limitTps: number;
  /** Holt one-tick-ahead forecast of demandTps and its trend per tick. */
  readonly forecastTps: number;
  readonly trendTps: number;
  /** Asked for tokens (or waited) in one of the last ACTIVE_TICKS ticks. */
  readonly active: boolean;
}

export interface PoolObservation {
  readonly bucket: number;
  readonly key: string;
  readonly tick: number;
  readonly capacityTps: number;
  /** Capacity after 429 discovery: what may be handed out this tick. */
  readonly effectiveTps: number;
  readonly totalDemandTps: number;
  readonly throttledTps: number;
  readonly grantedTps: number;
  /** The safety layer's growth rule, so policies can plan within it: limit x stepCap, or stepFloorTps. */
  readonly stepCap: number;
  readonly stepFloorTps: number;
  readonly services: readonly ServiceObservation[];
}
