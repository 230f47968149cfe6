'use strict';
// The simulated link: schedule changes, blackholes, CoDel, variable bandwidth.

const { runScenario, parseQlog } = require('../../js/lab');

async function simulate(link, { controller = 'cubic', durationMs = 20000, measure, trace = false } = {}) {
  const result = await runScenario(
    { name: 'link', durationMs, link, flows: [{ controller }], measure },
    { plots: false, trace },
  );
  return { summary: result.summary.runs[0], run: result.runs[0] };
}

test('a bandwidth step halves the goodput', async () => {
  const { summary } = await simulate(
    { preset: 'interop', schedule: [{ atMs: 10000, bandwidthMbps: 5 }] },
    { measure: { fromMs: 12000, toMs: 20000 } },
  );
  expect(summary.flows[0].goodputMbps).toBeGreaterThan(0.9 * 5 * (1186 / 1228));
  expect(summary.flows[0].goodputMbps).toBeLessThanOrEqual(5);
});

test('a flow survives a 2 s blackhole through probe timeouts and then refills the link', async () => {
  const { summary, run } = await simulate(
    { preset: 'interop', schedule: [{ atMs: 5000, blackholeMs: 2000 }] },
    { measure: { fromMs: 10000, toMs: 20000 }, trace: true },
  );
  const flow = summary.flows[0];
  expect(flow.ptoCount).toBeGreaterThanOrEqual(3);
  expect(flow.goodputMbps).toBeGreaterThan(9);
  const during = run.series.flows[0].points.filter((p) => p.t > 5.2 && p.t <= 7);
  expect(during.length).toBeGreaterThan(10);
  for (const p of during) expect(p.throughputMbps).toBe(0);
  const changes = parseQlog(run.trace).filter((e) => e.name === 'minimalt:link_updated');
  expect(changes.map((e) => [e.time, e.data.blackhole])).toEqual([[5000, true], [7000, false]]);
});

test('CoDel keeps the standing queue near its 5 ms target where drop-tail lets it grow', async () => {
  const codel = await simulate({ preset: 'deep-buffer', queue: { type: 'codel', packets: 1000 } }, { measure: { fromMs: 5000 } });
  const dropTail = await simulate({ preset: 'deep-buffer' }, { measure: { fromMs: 5000 } });
  expect(codel.summary.link.drops.aqm).toBeGreaterThan(0);
  expect(codel.summary.link.queueDelayMs.p50).toBeLessThan(10);
  expect(codel.summary.link.utilisation).toBeGreaterThan(0.9);
  expect(dropTail.summary.link.queueDelayMs.p50).toBeGreaterThan(100);
});

test('the cellular preset varies the bandwidth between its bounds, the same way for the same seed', async () => {
  const a = await simulate({ preset: 'cellular' }, { durationMs: 10000 });
  const b = await simulate({ preset: 'cellular' }, { durationMs: 10000 });
  const capacity = a.run.series.capacity.map((p) => p.mbps);
  expect(new Set(capacity).size).toBeGreaterThan(20);
  expect(Math.min(...capacity)).toBeGreaterThanOrEqual(2);
  expect(Math.max(...capacity)).toBeLessThanOrEqual(30);
  expect(b.run.series.capacity).toEqual(a.run.series.capacity);
  expect(a.summary.link.utilisation).toBeGreaterThan(0.8);
});
