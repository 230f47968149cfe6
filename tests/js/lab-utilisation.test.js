'use strict';
// On the QUIC interop runner's link (10 Mbit/s, 15 ms, 25-packet queue) every controller
// keeps the bottleneck at least 90 % busy once start-up is over.

const { runScenario, listControllers } = require('../../js/lab');

test.each(listControllers())('%s reaches at least 90 %% utilisation after start-up', async (controller) => {
  const { summary } = await runScenario(
    {
      name: 'utilisation',
      durationMs: 20000,
      link: { preset: 'interop' },
      flows: [{ controller }],
      // Start-up (slow start or BBR's STARTUP/DRAIN) is over well before 3 s.
      measure: { fromMs: 3000 },
    },
    { plots: false },
  );
  const run = summary.runs[0];
  expect(run.link.utilisation).toBeGreaterThanOrEqual(0.9);
  // Utilisation counts every byte on the wire; the application must see most of it too.
  expect(run.flows[0].goodputMbps).toBeGreaterThan(0.9 * 10 * (1200 - 14) / (1200 + 28));
});
