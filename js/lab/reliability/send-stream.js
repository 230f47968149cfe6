'use strict';
/**
 * The sending side of the ordered byte stream: which bytes to send next, which were
 * acknowledged, which must be sent again.
 *
 * Retransmission is by stream range, as in QUIC: a lost packet's bytes return to a queue
 * of ranges to resend, in new packets with new numbers, unless another packet got them
 * acknowledged meanwhile. Resent bytes go before new ones.
 */

const { RangeSet } = require('./ranges');

class SendStream {
  /**
   * @param {{length: number, read: (offset: number, length: number) => Buffer}} source
   */
  constructor(source) {
    this.source = source;
    this.length = source.length;
    /** First byte never sent. */
    this.nextOffset = 0;
    this.acked = new RangeSet();
    this.toResend = new RangeSet();
  }

  /** @returns {boolean} whether there are bytes to send (new or lost) */
  hasData() {
    return !this.toResend.isEmpty() || this.nextOffset < this.length;
  }

  /** @returns {boolean} whether every byte of a finite stream was acknowledged */
  isComplete() {
    return this.length !== Infinity && (this.length === 0 || this.acked.covers(0, this.length));
  }

  /**
   * Take the next chunk to send: the lowest range to resend, else new bytes.
   * @param {number} maxLength bytes
   * @returns {{offset: number, length: number, fin: boolean, retransmission: boolean}|null}
   */
  nextChunk(maxLength) {
    let offset;
    let length;
    let retransmission;
    if (!this.toResend.isEmpty()) {
      const [start, end] = this.toResend.first();
      offset = start;
      length = Math.min(end - start, maxLength);
      this.toResend.remove(offset, offset + length);
      retransmission = true;
    } else if (this.nextOffset < this.length) {
      offset = this.nextOffset;
      length = Math.min(this.length - offset, maxLength);
      this.nextOffset += length;
      retransmission = false;
    } else {
      return null;
    }
    return { offset, length, fin: offset + length === this.length, retransmission };
  }

  /**
   * @param {number} offset
   * @param {number} length
   * @returns {Buffer} the bytes at [offset, offset + length)
   */
  read(offset, length) {
    return this.source.read(offset, length);
  }

  /** Bytes [offset, offset + length) reached the receiver. */
  onAcked(offset, length) {
    this.acked.add(offset, offset + length);
    this.toResend.remove(offset, offset + length);
  }

  /** Bytes [offset, offset + length) were in a lost packet: resend what is not acked. */
  onLost(offset, length) {
    for (const [start, end] of this.acked.gaps(offset, offset + length)) {
      this.toResend.add(start, end);
    }
  }
}

module.exports = { SendStream };
