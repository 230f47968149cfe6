'use strict';
/**
 * Link schedules: timed changes of a link's bandwidth, delay, loss, or a blackhole.
 *
 * A schedule is a list of changes `{ atMs, bandwidthMbps?, delayMs?, loss?, blackhole? }`.
 * Two shorthands are expanded here, before the run starts:
 *   - `{ atMs, blackholeMs }`: a blackhole from atMs lasting blackholeMs;
 *   - a link's `variableBandwidth: { intervalMs, minMbps, maxMbps, stepMbps }`: a seeded
 *     random walk of the bandwidth, one step every intervalMs (a cellular-like link).
 */

/**
 * @param {object[]} schedule changes as written in a scenario
 * @param {object} [variableBandwidth] random-walk description, see above
 * @param {number} durationMs length of the run
 * @param {number} startMbps bandwidth at time 0 (the walk starts here)
 * @param {import('./prng').Prng} rng
 * @returns {object[]} plain changes, sorted by time (stable for equal times)
 */
function expandSchedule(schedule = [], variableBandwidth, durationMs, startMbps, rng) {
  const changes = [];
  for (const entry of schedule) {
    if (entry.blackholeMs !== undefined) {
      changes.push({ atMs: entry.atMs, blackhole: true });
      changes.push({ atMs: entry.atMs + entry.blackholeMs, blackhole: false });
      continue;
    }
    changes.push({ ...entry });
  }
  if (variableBandwidth) {
    const { intervalMs, minMbps, maxMbps, stepMbps } = variableBandwidth;
    let mbps = startMbps;
    for (let t = intervalMs; t < durationMs; t += intervalMs) {
      mbps += rng.uniform(-stepMbps, stepMbps);
      mbps = Math.min(maxMbps, Math.max(minMbps, mbps));
      changes.push({ atMs: t, bandwidthMbps: Math.round(mbps * 1000) / 1000 });
    }
  }
  return changes
    .map((change, index) => ({ change, index }))
    .sort((a, b) => a.change.atMs - b.change.atMs || a.index - b.index)
    .map(({ change }) => change);
}

module.exports = { expandSchedule };
