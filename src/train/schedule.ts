/**
 * Learning-rate schedules as multipliers of the base rate, indexed by the scheduler's step count (the number of
 * `scheduler.step()` calls so far, which is also the update the rate is used for: torch's LambdaLR applies
 * `lambda(0)` before the first update).
 */

/** transformers' `get_cosine_schedule_with_warmup` (half a cosine): linear 0 → 1 over `warmup`, then cosine to 0. */
export function cosineWithWarmup(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}
