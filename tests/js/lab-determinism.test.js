'use strict';
// The simulator is deterministic: the trace depends only on the scenario and its seed.

const { runScenario } = require('../../js/lab');

// Every source of randomness at once: bursty loss, reordering, a random bandwidth walk,
// and BBR's random gain-cycle phase, with two flows competing.
const scenario = {
  name: 'determinism',
  durationMs: 8000,
  link: {
    preset: 'lossy',
    reorder: { probability: 0.02, delayMs: 4 },
    variableBandwidth: { intervalMs: 250, minMbps: 4, maxMbps: 16, stepMbps: 3 },
  },
  flows: [{ controller: 'bbr' }, { controller: 'cubic', startMs: 500 }],
  measure: { fromMs: 1000 },
};

async function trace(seed) {
  const { runs, summary } = await runScenario(scenario, { seed, trace: true, plots: false });
  return { trace: runs[0].trace, summary: JSON.stringify(summary) };
}

test('the same seed and scenario give a byte-identical trace and summary', async () => {
  const a = await trace(7);
  const b = await trace(7);
  expect(a.trace.length).toBeGreaterThan(100000);
  expect(Buffer.from(b.trace).equals(Buffer.from(a.trace))).toBe(true);
  expect(b.summary).toBe(a.summary);
});

test('a different seed gives a different trace', async () => {
  const a = await trace(7);
  const c = await trace(8);
  expect(c.trace).not.toBe(a.trace);
});
