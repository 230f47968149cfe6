'use strict';
// The stream arrives complete and in order whatever the loss and reordering.

const crypto = require('node:crypto');
const { Simulator, Network, Sender, Receiver, createPrng, listControllers } = require('../../js/lab');

/**
 * Send `data` across a simulated interop-like link with the given random loss rate and
 * 3 % of packets held back 5 ms (reordered), until the sender has every byte acknowledged.
 */
function transfer({ data, controller, loss, seed }) {
  const sim = new Simulator();
  const network = new Network(
    sim,
    {
      bandwidthMbps: 10,
      delayMs: 15,
      queue: { packets: 25 },
      loss,
      reorder: { probability: 0.03, delayMs: 5 },
      // Lose acknowledgements too.
      reverse: { loss },
    },
    createPrng(seed),
  );
  const ends = network.attachFlow(0);
  const sender = new Sender({ transport: ends.sender, controller, data });
  const receiver = new Receiver({ transport: ends.receiver, collect: true });
  sender.start();
  const completed = sim.runWhile(() => sender.complete, 600000);
  return { completed, sender, receiver };
}

const data = crypto.randomBytes(200000);

describe.each([0, 0.05, 0.1, 0.2])('at %p random loss with reordering', (loss) => {
  test.each(listControllers())('%s delivers the stream complete and in order', (controller) => {
    const { completed, sender, receiver } = transfer({ data, controller, loss, seed: `${controller}-${loss}` });
    expect(completed).toBe(true);
    expect(receiver.ended).toBe(true);
    expect(receiver.data().equals(data)).toBe(true);
    // The link really did reorder, and (when lossy) really did lose.
    expect(receiver.stats.packetsOutOfOrder).toBeGreaterThan(0);
    if (loss > 0) expect(sender.stats.packetsLost).toBeGreaterThan(0);
  });
});
