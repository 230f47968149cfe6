#!/usr/bin/env node
'use strict';
/**
 * A congestion controller in one class, registered and compared against CUBIC on the
 * interop link. Copy this file to start your own controller.
 *
 *   node examples/lab/custom-controller.js [durationMs]
 */

const path = require('node:path');
// Inside the repository; an installed package would use require('minimalt/js/lab').
const lab = require(path.join(__dirname, '..', '..', 'js', 'lab'));

/**
 * AIMD with a gentler decrease than Reno: add one datagram per round trip, multiply by
 * 0.8 on a congestion event (once per recovery period), and start from slow start.
 */
class GentleAimd extends lab.CongestionController {
  static id = 'gentle-aimd';

  onAck({ packets, appLimited }) {
    for (const packet of packets) {
      if (this.sentBeforeRecovery(packet.timeSent)) continue;
      this.inRecovery = false;
      if (appLimited) continue;
      this.cwnd += this.cwnd < this.ssthresh ? packet.size : (this.mss * packet.size) / this.cwnd;
    }
  }

  onLoss({ time, packets }) {
    if (this.sentBeforeRecovery(packets[packets.length - 1].timeSent)) return;
    this.recoveryStartTime = time;
    this.inRecovery = true;
    this.ssthresh = Math.max(this.cwnd * 0.8, this.minimumWindow);
    this.cwnd = this.ssthresh;
  }
}

lab.registerController(GentleAimd.id, GentleAimd);

async function main() {
  const durationMs = Number(process.argv[2] ?? 20000);
  const { summary } = await lab.runScenario({
    name: 'custom-controller',
    durationMs,
    link: { preset: 'interop' },
    flows: [{}],
    controllers: ['gentle-aimd', 'cubic'],
    measure: { fromMs: Math.min(5000, durationMs / 2) },
  });
  for (const run of summary.runs) {
    const flow = run.flows[0];
    console.log(
      `${run.run.padEnd(12)} goodput ${flow.goodputMbps.toFixed(2)} Mbit/s, ` +
        `p95 one-way delay ${flow.owdMs.p95.toFixed(1)} ms, ${flow.packetsLost} packets lost`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
