'use strict';
// On a deep buffer (1000 packets, about one second at 10 Mbit/s) CUBIC fills the queue
// before it sees a loss, while BBR keeps about one BDP in flight: BBR's queueing delay is
// a small fraction of CUBIC's, for the same throughput.

const { runScenario } = require('../../js/lab');

test('BBR keeps queueing delay far below CUBIC on a deep buffer', async () => {
  const { summary } = await runScenario(
    {
      name: 'deep-buffer',
      durationMs: 30000,
      link: { preset: 'deep-buffer' },
      flows: [{}],
      controllers: ['cubic', 'bbr'],
      measure: { fromMs: 5000 },
    },
    { plots: false },
  );
  const [cubic, bbr] = summary.runs;
  expect(cubic.run).toBe('cubic');
  expect(bbr.run).toBe('bbr');
  // Both keep the link busy: BBR is not buying low delay with idle capacity.
  expect(cubic.link.utilisation).toBeGreaterThan(0.9);
  expect(bbr.link.utilisation).toBeGreaterThan(0.9);
  // CUBIC: hundreds of milliseconds queued; BBR: a few milliseconds.
  expect(cubic.link.queueDelayMs.p50).toBeGreaterThan(200);
  expect(cubic.link.queueDelayMs.p50 / bbr.link.queueDelayMs.p50).toBeGreaterThan(10);
  expect(cubic.link.queueDelayMs.p95 / bbr.link.queueDelayMs.p95).toBeGreaterThan(10);
});
