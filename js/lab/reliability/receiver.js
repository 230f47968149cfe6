'use strict';
/**
 * The receiving endpoint: reassembles the ordered byte stream from DATA packets and sends
 * ACKs (selective, as ranges) following the policy of reliability/ack-tracker.js.
 *
 * Events: 'data' (chunk) for each run of bytes delivered in order; 'end' once the whole
 * stream has been delivered.
 */

const { EventEmitter } = require('node:events');
const { decode, encodeAck } = require('./packet');
const { AckTracker } = require('./ack-tracker');
const { RecvStream } = require('./recv-stream');

class Receiver extends EventEmitter {
  /**
   * @param {object} options
   * @param {object} options.transport the datagram transport (see ../transport.js)
   * @param {boolean} [options.collect=false] keep delivered bytes for {@link Receiver#data}
   * @param {number} [options.maxAckDelay=25] ms
   * @param {number} [options.ackElicitingThreshold=2] packets per ACK
   */
  constructor({ transport, collect = false, maxAckDelay, ackElicitingThreshold }) {
    super();
    this.transport = transport;
    this.tracker = new AckTracker({ maxAckDelay, ackElicitingThreshold });
    this.stream = new RecvStream();
    this._chunks = collect ? [] : null;
    this._ended = false;
    this._closed = false;
    this.stats = {
      packetsReceived: 0,
      packetsOutOfOrder: 0,
      bytesReceived: 0,
      acksSent: 0,
      malformed: 0,
      bytesDelivered: 0,
    };
    this._deliver = (chunk) => {
      this.stats.bytesDelivered += chunk.length;
      if (this._chunks !== null) this._chunks.push(chunk);
      this.emit('data', chunk);
    };
    this._onAckTimer = () => this._sendAck();
    transport.onMessage((buf) => this._onDatagram(buf));
  }

  /** @returns {boolean} whether the whole stream was delivered */
  get ended() {
    return this._ended;
  }

  /** @returns {Buffer} everything delivered so far (only with `collect: true`) */
  data() {
    if (this._chunks === null) throw new Error('Receiver was created without collect: true');
    return Buffer.concat(this._chunks);
  }

  /** Stop acknowledging and disarm the timer. */
  close() {
    this._closed = true;
    this.transport.setTimer(null);
  }

  _onDatagram(buf) {
    if (this._closed) return;
    const packet = decode(buf);
    if (packet === null || packet.type !== 'data') {
      this.stats.malformed++;
      return;
    }
    const now = this.transport.now();
    this.stats.packetsReceived++;
    if (packet.packetNumber < this.tracker.largest) this.stats.packetsOutOfOrder++;
    this.stats.bytesReceived += buf.length;
    let ackNow = this.tracker.onPacket(packet.packetNumber, now);
    if (!this.stream.onChunk(packet.offset, packet.payload, packet.fin, this._deliver)) {
      this.stats.malformed++;
    }
    const endsNow = !this._ended && this.stream.isComplete();
    // The last bytes are acknowledged at once: the sender is waiting for nothing else.
    if (endsNow) ackNow = true;
    if (ackNow) this._sendAck();
    else this.transport.setTimer(this.tracker.ackDeadline, this._onAckTimer);
    if (endsNow) {
      this._ended = true;
      this.emit('end');
    }
  }

  _sendAck() {
    if (this._closed) return;
    const now = this.transport.now();
    const { ackDelay, ranges } = this.tracker.takeAck(now);
    if (ranges.length === 0) return;
    this.transport.setTimer(null);
    this.stats.acksSent++;
    this.transport.send(encodeAck(ackDelay, ranges));
  }
}

module.exports = { Receiver };
