'use strict';
// NewReno's textbook shape, read from the qlog trace: the window doubles every round trip in
// slow start and halves on the first loss.

const { runScenario, parseQlog } = require('../../js/lab');

// 100 Mbit/s and 15 ms each way: a BDP of ~310 packets, so slow start runs for several
// round trips (from 10 packets) before the 200-packet queue overflows.
const scenario = {
  name: 'newreno-shape',
  durationMs: 3000,
  link: { bandwidthMbps: 100, delayMs: 15, queue: { packets: 200 } },
  flows: [{ controller: 'newreno' }],
};

let events;
beforeAll(async () => {
  const { runs } = await runScenario(scenario, { trace: true, plots: false });
  events = parseQlog(runs[0].trace).slice(1);
});

/** The congestion window in force at time t (last metrics update at or before t). */
function cwndAt(t) {
  let cwnd = null;
  for (const e of events) {
    if (e.time > t) break;
    if (e.name === 'recovery:metrics_updated' && e.data.congestion_window !== undefined) {
      cwnd = e.data.congestion_window;
    }
  }
  return cwnd;
}

test('slow start roughly doubles the window every round trip', () => {
  const firstLoss = events.find((e) => e.name === 'recovery:packet_lost');
  const firstSample = events.find((e) => e.name === 'recovery:metrics_updated' && e.data.min_rtt);
  const rtt = firstSample.data.min_rtt;
  expect(rtt).toBeGreaterThan(30);
  expect(rtt).toBeLessThan(32);
  // Acknowledgements arrive in one cluster per round trip, starting at t0 + k * rtt. The
  // window just before the next cluster is the window at the end of round k.
  const t0 = firstSample.time;
  const endOfRound = (k) => cwndAt(t0 + (k + 1) * rtt - 1);
  const ratios = [];
  for (let k = 0; t0 + (k + 2) * rtt < firstLoss.time - rtt; k++) {
    ratios.push(endOfRound(k + 1) / endOfRound(k));
  }
  expect(ratios.length).toBeGreaterThanOrEqual(3);
  for (const ratio of ratios) {
    expect(ratio).toBeGreaterThan(1.7);
    expect(ratio).toBeLessThan(2.3);
  }
});

test('the first loss halves the window', () => {
  const lossIndex = events.findIndex((e) => e.name === 'recovery:packet_lost');
  const before = cwndAt(events[lossIndex].time - 1e-3);
  const after = events
    .slice(lossIndex)
    .find((e) => e.name === 'recovery:metrics_updated' && e.data.congestion_window !== undefined)
    .data.congestion_window;
  expect(before).toBeGreaterThan(100000);
  expect(after / before).toBeGreaterThan(0.45);
  expect(after / before).toBeLessThan(0.55);
  const state = events.slice(lossIndex).find((e) => e.name === 'recovery:congestion_state_updated');
  expect(state.data.new).toBe('recovery');
});
