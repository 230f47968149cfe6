'use strict';
/**
 * TCP Vegas (Brakmo and Peterson, 1995), as in Linux's tcp_vegas.c: a delay-based
 * controller. Once per round trip it compares the expected rate (cwnd / BaseRTT) with the
 * actual one (cwnd / RTT); the difference, in packets, is how much of its own data sits in
 * queues. It keeps that between alpha and beta packets by adding or removing one packet
 * per round trip, and leaves slow start as soon as more than gamma packets queue.
 * On loss it halves its window like Reno.
 */

const { CongestionController } = require('./controller');

class Vegas extends CongestionController {
  static id = 'vegas';

  /**
   * @param {object} [options] see CongestionController, plus
   * @param {number} [options.alpha=2] packets queued below which the window grows
   * @param {number} [options.beta=4] packets queued above which the window shrinks
   * @param {number} [options.gamma=1] packets queued that end slow start
   */
  constructor(options = {}) {
    super(options);
    this.alpha = options.alpha ?? 2;
    this.beta = options.beta ?? 4;
    this.gamma = options.gamma ?? 1;
    /** Smallest RTT ever seen: the propagation delay estimate, ms. */
    this.baseRtt = Infinity;
    /** Smallest RTT in the current round, ms, and the number of samples in it. */
    this.roundMinRtt = Infinity;
    this.roundSamples = 0;
    /** The round ends when a packet numbered above this is acknowledged. */
    this.roundEnd = -1;
    this.lastSent = -1;
  }

  onPacketSent({ packet }) {
    this.lastSent = packet.packetNumber;
  }

  onRttSample(event) {
    super.onRttSample(event);
    const sample = event.rtt.latestRtt;
    if (sample < this.baseRtt) this.baseRtt = sample;
    if (sample < this.roundMinRtt) this.roundMinRtt = sample;
    this.roundSamples++;
  }

  onAck({ packets, appLimited }) {
    let ackedBytes = 0;
    for (const packet of packets) {
      if (this.sentBeforeRecovery(packet.timeSent)) continue;
      this.inRecovery = false;
      ackedBytes += packet.size;
    }
    if (ackedBytes === 0 || appLimited) return;
    const newest = packets[packets.length - 1].packetNumber;
    if (newest > this.roundEnd) {
      this.roundEnd = this.lastSent;
      this._onRoundEnd(ackedBytes);
      this.roundMinRtt = Infinity;
      this.roundSamples = 0;
    } else if (this.cwnd < this.ssthresh) {
      this.cwnd += ackedBytes;
    }
  }

  _onRoundEnd(ackedBytes) {
    if (this.roundSamples <= 2) {
      // Too few samples to trust the RTT: behave like Reno (as Linux does).
      this.cwnd += this.cwnd < this.ssthresh ? ackedBytes : (this.mss * ackedBytes) / this.cwnd;
      return;
    }
    const rtt = this.roundMinRtt;
    const packets = this.cwnd / this.mss;
    const targetCwnd = (this.cwnd * this.baseRtt) / rtt;
    const queued = (packets * (rtt - this.baseRtt)) / rtt;
    if (this.cwnd < this.ssthresh) {
      if (queued > this.gamma) {
        // Queues build: leave slow start at the window the path actually carries.
        this.cwnd = Math.min(this.cwnd, targetCwnd + this.mss);
        this.ssthresh = Math.max(this.cwnd - this.mss, this.minimumWindow);
      } else {
        this.cwnd += ackedBytes;
      }
    } else if (queued > this.beta) {
      this.cwnd -= this.mss;
      this.ssthresh = Math.min(this.ssthresh, Math.max(this.cwnd - this.mss, this.minimumWindow));
    } else if (queued < this.alpha) {
      this.cwnd += this.mss;
    }
    this.cwnd = Math.max(this.cwnd, this.minimumWindow);
  }

  onLoss({ time, packets, persistentCongestion }) {
    const newest = packets[packets.length - 1];
    if (!this.sentBeforeRecovery(newest.timeSent)) {
      this.recoveryStartTime = time;
      this.inRecovery = true;
      this.ssthresh = Math.max(this.cwnd / 2, this.minimumWindow);
      this.cwnd = this.ssthresh;
    }
    if (persistentCongestion) {
      this.cwnd = this.minimumWindow;
      this.recoveryStartTime = null;
      this.inRecovery = false;
    }
  }
}

module.exports = { Vegas };
