'use strict';
/**
 * The sending endpoint: carries an ordered byte stream to a Receiver over an unreliable
 * datagram transport, with packet numbers, selective acknowledgements, RFC 9002 loss
 * detection and probe timeouts, a pluggable congestion controller and pacing.
 *
 * Like aioquic's connection, it has three inputs (start/stop, an arriving datagram, its
 * timer) and after each input one `_flush()` sends whatever the window and the pacer
 * allow, then re-arms the single timer. The transport is the only I/O:
 * `{ send(buf), onMessage(cb), now(), setTimer(at, cb) }` (see ../transport.js).
 *
 * Events: 'complete' when every byte of a finite stream has been acknowledged;
 * 'rtt' (latestRtt, now) for every RTT sample.
 */

const { EventEmitter } = require('node:events');
const C = require('./constants');
const { encodeData, decode, DATA_HEADER_SIZE } = require('./packet');
const { RttEstimator } = require('./rtt');
const { LossDetection } = require('./loss-detection');
const { DeliveryRateEstimator } = require('./delivery-rate');
const { Pacer } = require('./pacer');
const { SendStream } = require('./send-stream');
const { patternSource, bufferSource } = require('./sources');
const { createController } = require('../cc');

const round3 = (x) => Math.round(x * 1000) / 1000;

class Sender extends EventEmitter {
  /**
   * @param {object} options
   * @param {object} options.transport the datagram transport (see ../transport.js)
   * @param {string|import('../cc/controller').CongestionController} options.controller
   *   a registered name or an instance
   * @param {Buffer} [options.data] the bytes to send, or
   * @param {number} [options.length] send this many pattern bytes (Infinity: never stop)
   * @param {number} [options.maxDatagramSize=1200] bytes
   * @param {number} [options.maxAckDelay=25] the receiver's max_ack_delay, ms
   * @param {boolean} [options.pacing=true]
   * @param {number} [options.burstPackets=2] pacer burst
   * @param {{event: (name: string, data: object) => void, packets?: boolean}} [options.qlog]
   *   trace sink; per-packet events only if `packets` is true
   */
  constructor(options) {
    super();
    const {
      transport,
      controller,
      maxDatagramSize = C.maxDatagramSize,
      maxAckDelay = C.maxAckDelay,
      pacing = true,
      burstPackets = 2,
      qlog = null,
    } = options;
    if (options.data === undefined && options.length === undefined) {
      throw new TypeError('Sender needs data or length');
    }
    this.transport = transport;
    this.controller =
      typeof controller === 'string' ? createController(controller, { maxDatagramSize }) : controller;
    this.maxDatagramSize = maxDatagramSize;
    this.maxPayload = maxDatagramSize - DATA_HEADER_SIZE;
    this.stream = new SendStream(
      options.data !== undefined ? bufferSource(options.data) : patternSource(options.length),
    );
    this.rtt = new RttEstimator({ maxAckDelay });
    this.recovery = new LossDetection(this.rtt);
    this.rate = new DeliveryRateEstimator();
    this.pacer = pacing
      ? new Pacer({
          packetSize: maxDatagramSize,
          burstPackets,
          granularityMs: transport.timerGranularityMs ?? 1,
        })
      : null;
    this.qlog = qlog;
    this._logPackets = Boolean(qlog && qlog.packets);
    this._lastMetrics = {};
    this._lastState = null;
    this._probesToSend = 0;
    this._appLimited = false;
    this._running = false;
    this._done = false;
    /** Counters, for summaries and tests. */
    this.stats = {
      packetsSent: 0,
      bytesSent: 0,
      packetsLost: 0,
      bytesLost: 0,
      bytesRetransmitted: 0,
      ptoCount: 0,
      acksReceived: 0,
      malformed: 0,
    };
    this._onTimer = this._onTimer.bind(this);
    transport.onMessage((buf) => this._onDatagram(buf));
  }

  /** @returns {number} bytes in flight */
  get bytesInFlight() {
    return this.recovery.bytesInFlight;
  }

  /** @returns {number} the controller's congestion window, bytes */
  get congestionWindow() {
    return this.controller.congestionWindow;
  }

  /** @returns {number} the pacing rate in force, bytes per second (Infinity if none) */
  get pacingRate() {
    const rate = this.controller.pacingRate;
    return rate > 0 ? rate : Infinity;
  }

  /** @returns {boolean} whether every byte was acknowledged */
  get complete() {
    return this._done;
  }

  /** Begin sending. */
  start() {
    this._running = true;
    this._logState();
    this._flush();
  }

  /** Stop sending and disarm the timer (acknowledgements are then ignored). */
  stop() {
    this._running = false;
    this.transport.setTimer(null);
  }

  _onDatagram(buf) {
    if (!this._running) return;
    const packet = decode(buf);
    if (packet === null || packet.type !== 'ack') {
      this.stats.malformed++;
      return;
    }
    const now = this.transport.now();
    this.stats.acksReceived++;
    if (this._logPackets) this._logAckReceived(packet, buf.length);
    const { acked, lost, rttUpdated, persistentCongestion } = this.recovery.onAck(packet, now);
    if (acked.length === 0) return;
    for (const p of acked) this.stream.onAcked(p.offset, p.length);
    const rateSample = this.rate.onAck(acked, now, this.rtt.minRtt);
    const controller = this.controller;
    if (rttUpdated) {
      controller.onRttSample({ time: now, rtt: this.rtt });
      this.emit('rtt', this.rtt.latestRtt, now);
    }
    if (lost.length > 0) this._onLost(lost, now, persistentCongestion);
    controller.onAck({
      time: now,
      packets: acked,
      bytesInFlight: this.recovery.bytesInFlight,
      rateSample,
      rttSample: rttUpdated ? this.rtt.latestRtt : null,
      rtt: this.rtt,
      appLimited: this._appLimited,
    });
    this._logMetrics();
    if (this.stream.isComplete()) {
      this._finish();
      return;
    }
    this._flush();
  }

  _onTimer() {
    if (!this._running) return;
    const now = this.transport.now();
    const deadline = this.recovery.deadline();
    if (deadline !== null && now >= deadline) {
      const { lost, probe } = this.recovery.onTimeout(now);
      if (lost.length > 0) this._onLost(lost, now, false);
      if (probe) {
        this.stats.ptoCount++;
        this._probesToSend = 2;
        if (this.qlog) {
          this.qlog.event('recovery:loss_timer_updated', {
            timer_type: 'pto',
            event_type: 'expired',
          });
        }
      }
      this._logMetrics();
    }
    this._flush();
  }

  _onLost(lost, now, persistentCongestion) {
    for (const p of lost) {
      this.stream.onLost(p.offset, p.length);
      this.stats.packetsLost++;
      this.stats.bytesLost += p.size;
      if (this.qlog) {
        this.qlog.event('recovery:packet_lost', {
          header: { packet_type: '1RTT', packet_number: p.packetNumber },
          trigger: p.lossTrigger,
        });
      }
    }
    this.controller.onLoss({
      time: now,
      packets: lost,
      persistentCongestion,
      bytesInFlight: this.recovery.bytesInFlight,
    });
    if (persistentCongestion && this.qlog) {
      const state = this.controller.state;
      this.qlog.event('recovery:congestion_state_updated', {
        old: this._lastState,
        new: state,
        trigger: 'persistent_congestion',
      });
      this._lastState = state;
    }
  }

  /** Send what the window, the pacer and the stream allow; then arm the timer. */
  _flush() {
    if (!this._running) return;
    const now = this.transport.now();
    const mds = this.maxDatagramSize;
    let pacedUntil = null;
    for (;;) {
      const probing = this._probesToSend > 0;
      if (!probing && this.recovery.bytesInFlight + mds > this.controller.congestionWindow) {
        this._appLimited = false;
        break;
      }
      if (!this.stream.hasData()) {
        if (probing && this._sendProbeRetransmission(now)) continue;
        this._probesToSend = 0;
        this._onNothingToSend(now);
        break;
      }
      if (!probing && this.pacer !== null) {
        const at = this.pacer.nextSendTime(now, mds, this.pacingRate);
        if (at > now) {
          pacedUntil = at;
          break;
        }
      }
      this._sendChunk(this.stream.nextChunk(this.maxPayload), now);
    }
    this._logState();
    let at = this.recovery.deadline();
    if (pacedUntil !== null && (at === null || pacedUntil < at)) at = pacedUntil;
    this.transport.setTimer(at, this._onTimer);
  }

  _onNothingToSend(now) {
    this.rate.onAppLimited(this.recovery.bytesInFlight);
    if (this._appLimited) return;
    this._appLimited = true;
    this.controller.onAppLimited({ time: now, bytesInFlight: this.recovery.bytesInFlight });
  }

  /** A probe with no new data to carry: resend the oldest packet in flight. */
  _sendProbeRetransmission(now) {
    const oldest = this.recovery.sent.oldest();
    if (oldest === undefined) return false;
    this._sendChunk(
      { offset: oldest.offset, length: oldest.length, fin: oldest.fin, retransmission: true },
      now,
    );
    return true;
  }

  _sendChunk(chunk, now) {
    const packetNumber = this.recovery.sent.nextPacketNumber;
    const payload = this.stream.read(chunk.offset, chunk.length);
    const buf = encodeData(packetNumber, chunk.offset, chunk.fin, payload);
    const packet = {
      packetNumber,
      timeSent: now,
      size: buf.length,
      offset: chunk.offset,
      length: chunk.length,
      fin: chunk.fin,
      lossTrigger: null,
    };
    const inFlightBefore = this.recovery.bytesInFlight;
    this.rate.onPacketSent(packet, now, inFlightBefore);
    this.recovery.onPacketSent(packet);
    const rate = this.pacingRate;
    if (this.pacer !== null) this.pacer.onPacketSent(now, buf.length, rate);
    this.controller.onPacketSent({ time: now, packet, bytesInFlight: this.recovery.bytesInFlight });
    if (this._probesToSend > 0) this._probesToSend--;
    const stats = this.stats;
    stats.packetsSent++;
    stats.bytesSent += buf.length;
    if (chunk.retransmission) stats.bytesRetransmitted += chunk.length;
    if (this._logPackets) {
      this.qlog.event('transport:packet_sent', {
        header: { packet_type: '1RTT', packet_number: packetNumber },
        raw: { length: buf.length },
        frames: [{ frame_type: 'stream', offset: chunk.offset, length: chunk.length, fin: chunk.fin }],
      });
    }
    this.transport.send(buf);
  }

  _finish() {
    this._done = true;
    this.stop();
    this.emit('complete');
  }

  _logAckReceived(ack, length) {
    this.qlog.event('transport:packet_received', {
      header: { packet_type: '1RTT' },
      raw: { length },
      frames: [
        {
          frame_type: 'ack',
          ack_delay: round3(ack.ackDelay),
          acked_ranges: ack.ranges.map(([lo, hi]) => [lo, hi]).reverse(),
        },
      ],
    });
  }

  /** Emit recovery:metrics_updated with the fields that changed since the last one. */
  _logMetrics() {
    if (!this.qlog) return;
    const rtt = this.rtt;
    const controller = this.controller;
    const current = {
      min_rtt: rtt.hasSample ? round3(rtt.minRtt) : undefined,
      smoothed_rtt: round3(rtt.smoothedRtt),
      latest_rtt: rtt.hasSample ? round3(rtt.latestRtt) : undefined,
      rtt_variance: round3(rtt.rttVar),
      pto_count: this.recovery.ptoCount,
      congestion_window: Math.round(controller.congestionWindow),
      bytes_in_flight: this.recovery.bytesInFlight,
      ssthresh: Number.isFinite(controller.slowStartThreshold)
        ? Math.round(controller.slowStartThreshold)
        : undefined,
      pacing_rate: Number.isFinite(this.pacingRate) ? Math.round(this.pacingRate * 8) : undefined,
    };
    const changed = {};
    let any = false;
    for (const key of Object.keys(current)) {
      if (current[key] !== undefined && current[key] !== this._lastMetrics[key]) {
        changed[key] = current[key];
        any = true;
      }
    }
    if (!any) return;
    this._lastMetrics = current;
    this.qlog.event('recovery:metrics_updated', changed);
  }

  _logState() {
    const state = this._appLimited ? 'application_limited' : this.controller.state;
    if (state === this._lastState) return;
    if (this.qlog) {
      this.qlog.event('recovery:congestion_state_updated', { old: this._lastState, new: state });
    }
    this._lastState = state;
  }
}

module.exports = { Sender };
