'use strict';
/**
 * Constants of loss detection and congestion control, named as in RFC 9002 (appendix A.2
 * and B.1) and RFC 9000. Times are in milliseconds, sizes in bytes.
 */

module.exports = Object.freeze({
  /** Packets acknowledged after a missing one before it is declared lost. */
  kPacketThreshold: 3,
  /** Multiple of max(smoothed, latest RTT) after which an unacked packet is lost. */
  kTimeThreshold: 9 / 8,
  /** Timer granularity assumed for the time threshold and the PTO. */
  kGranularity: 1,
  /** RTT assumed before the first sample. */
  kInitialRtt: 333,
  /** Number of PTO periods of loss that make persistent congestion. */
  kPersistentCongestionThreshold: 3,
  /** Largest datagram the lab sends (the MinimaLT default path size). */
  maxDatagramSize: 1200,
  /** Longest a receiver delays an acknowledgement. */
  maxAckDelay: 25,
  /** A receiver acknowledges at least every this many ack-eliciting packets. */
  ackElicitingThreshold: 2,
  /** Most ack ranges one ACK carries (the newest ones). */
  maxAckRanges: 32,
  /** Pacing gain applied to cwnd/srtt when a controller gives no pacing rate (RFC 9002 7.7). */
  kPacingGain: 1.25,
  /** Pacing gain in slow start, as in Linux: the window doubles every round trip. */
  kSlowStartPacingGain: 2,
});
