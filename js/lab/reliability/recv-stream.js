'use strict';
/**
 * The receiving side of the ordered byte stream: reassembles chunks that arrive out of
 * order, in duplicate or overlapping, and hands bytes on strictly in order, exactly once.
 */

class RecvStream {
  constructor() {
    /** Bytes delivered in order so far (the next expected offset). */
    this.delivered = 0;
    /** Stream length, once a FIN has been seen. */
    this.finalSize = null;
    /** Chunks beyond `delivered`, sorted by offset: {offset, data}. */
    this._pending = [];
    /** Bytes received that were already delivered or already buffered. */
    this.duplicateBytes = 0;
  }

  /** @returns {boolean} whether the whole stream was delivered */
  isComplete() {
    return this.finalSize !== null && this.delivered === this.finalSize;
  }

  /** @returns {number} chunks held waiting for a gap to fill */
  get bufferedChunks() {
    return this._pending.length;
  }

  /**
   * Accept a chunk; call `deliver` for each run of bytes that became in order.
   * @param {number} offset
   * @param {Buffer} data
   * @param {boolean} fin whether the chunk ends the stream
   * @param {(chunk: Buffer) => void} deliver
   * @returns {boolean} false if the chunk contradicts the stream's final size
   */
  onChunk(offset, data, fin, deliver) {
    const end = offset + data.length;
    if (fin) {
      if (this.finalSize !== null && this.finalSize !== end) return false;
      this.finalSize = end;
    }
    if (this.finalSize !== null && end > this.finalSize) return false;
    if (end <= this.delivered) {
      this.duplicateBytes += data.length;
      return true;
    }
    if (offset > this.delivered) {
      this._insert(offset, data);
      return true;
    }
    this._deliverFrom(offset, data, deliver);
    this._drain(deliver);
    return true;
  }

  _deliverFrom(offset, data, deliver) {
    const skip = this.delivered - offset;
    if (skip > 0) this.duplicateBytes += skip;
    const fresh = skip > 0 ? data.subarray(skip) : data;
    this.delivered += fresh.length;
    deliver(fresh);
  }

  _insert(offset, data) {
    const pending = this._pending;
    let lo = 0;
    let hi = pending.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pending[mid].offset <= offset) lo = mid + 1;
      else hi = mid;
    }
    // Copy: the datagram buffer may be reused by the transport.
    pending.splice(lo, 0, { offset, data: Buffer.from(data) });
  }

  _drain(deliver) {
    const pending = this._pending;
    let taken = 0;
    while (taken < pending.length && pending[taken].offset <= this.delivered) {
      const { offset, data } = pending[taken++];
      if (offset + data.length <= this.delivered) {
        this.duplicateBytes += data.length;
        continue;
      }
      this._deliverFrom(offset, data, deliver);
    }
    if (taken > 0) pending.splice(0, taken);
  }
}

module.exports = { RecvStream };
