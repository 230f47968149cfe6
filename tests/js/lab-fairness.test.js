'use strict';
// Two flows of one controller share the bottleneck fairly: Jain's index >= 0.95 over a
// 60 s simulation. The second flow starts 2 s after the first, so fairness has to be
// reached by convergence, not by symmetry.
//
// Vegas is excluded: it is known to be unfair to the flow that starts first (Mo et al.,
// "Analysis and comparison of TCP Reno and Vegas", 1999). The late flow measures its
// BaseRTT with the first flow's packets already queued, so it believes that queue is part
// of the path and keeps alpha..beta packets queued on top of it; here it ends with about
// twice the first flow's share (Jain's index ~0.90).

const { runScenario } = require('../../js/lab');

test.each(['newreno', 'cubic', 'bbr'])('two %s flows share the link with Jain index >= 0.95', async (controller) => {
  const { summary } = await runScenario(
    {
      name: 'fairness',
      durationMs: 60000,
      link: { preset: 'interop' },
      flows: [{ controller }, { controller, startMs: 2000 }],
      measure: { fromMs: 5000 },
    },
    { plots: false },
  );
  const run = summary.runs[0];
  expect(run.flows).toHaveLength(2);
  for (const flow of run.flows) expect(flow.goodputMbps).toBeGreaterThan(3);
  expect(run.aggregate.jainIndex).toBeGreaterThanOrEqual(0.95);
});
