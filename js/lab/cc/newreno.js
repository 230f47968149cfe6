'use strict';
/**
 * NewReno as specified for QUIC in RFC 9002 section 7 and appendix B: slow start doubles
 * the window every round trip, congestion avoidance adds one datagram per window acked,
 * and a loss halves the window once per recovery period.
 */

const { CongestionController } = require('./controller');

const kLossReductionFactor = 0.5;

class NewReno extends CongestionController {
  static id = 'newreno';

  onAck({ packets, appLimited }) {
    for (const packet of packets) {
      if (this.sentBeforeRecovery(packet.timeSent)) continue;
      // A packet sent after recovery began was acked: recovery is over.
      this.inRecovery = false;
      // RFC 9002 7.8: do not grow a window the sender is not using.
      if (appLimited) continue;
      if (this.cwnd < this.ssthresh) {
        this.cwnd += packet.size;
      } else {
        this.cwnd += (this.mss * packet.size) / this.cwnd;
      }
    }
  }

  onLoss({ time, packets, persistentCongestion }) {
    const newest = packets[packets.length - 1];
    if (!this.sentBeforeRecovery(newest.timeSent)) {
      this.recoveryStartTime = time;
      this.inRecovery = true;
      this.ssthresh = Math.max(this.cwnd * kLossReductionFactor, this.minimumWindow);
      this.cwnd = this.ssthresh;
    }
    if (persistentCongestion) {
      // RFC 9002 7.6.2: the path may have changed entirely; start over from the minimum.
      this.cwnd = this.minimumWindow;
      this.recoveryStartTime = null;
      this.inRecovery = false;
    }
  }
}

module.exports = { NewReno };
