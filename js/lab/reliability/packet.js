'use strict';
/**
 * The lab's wire format: two packet types, big-endian, parsed with length checks first.
 *
 *   DATA  type=0x01 | flags (bit 0: FIN) | packet number u32 | stream offset u48 |
 *         payload length u16 | payload
 *   ACK   type=0x02 | ack delay u32 (microseconds) | range count u8 |
 *         range count x (largest u32, smallest u32), newest range first
 *
 * The format is deliberately plain: it carries what reliability and congestion control
 * need over any datagram channel (a simulated link, a UDP socket, a MinimaLT tunnel).
 */

const DATA = 0x01;
const ACK = 0x02;
const FLAG_FIN = 0x01;
const DATA_HEADER_SIZE = 14;
const ACK_HEADER_SIZE = 6;
const ACK_RANGE_SIZE = 8;
const MAX_OFFSET = 2 ** 48 - 1;

/**
 * @param {number} packetNumber
 * @param {number} offset stream offset of the first payload byte
 * @param {boolean} fin whether the payload ends the stream
 * @param {Buffer} payload
 * @returns {Buffer}
 */
function encodeData(packetNumber, offset, fin, payload) {
  const buf = Buffer.allocUnsafe(DATA_HEADER_SIZE + payload.length);
  buf[0] = DATA;
  buf[1] = fin ? FLAG_FIN : 0;
  buf.writeUInt32BE(packetNumber, 2);
  buf.writeUIntBE(offset, 6, 6);
  buf.writeUInt16BE(payload.length, 12);
  payload.copy(buf, DATA_HEADER_SIZE);
  return buf;
}

/**
 * @param {number} ackDelayMs time the receiver held the newest packet before acking
 * @param {Array<[number, number]>} ranges [smallest, largest] inclusive, newest first
 * @returns {Buffer}
 */
function encodeAck(ackDelayMs, ranges) {
  const buf = Buffer.allocUnsafe(ACK_HEADER_SIZE + ACK_RANGE_SIZE * ranges.length);
  buf[0] = ACK;
  buf.writeUInt32BE(Math.min(0xffffffff, Math.round(ackDelayMs * 1000)), 1);
  buf[5] = ranges.length;
  let at = ACK_HEADER_SIZE;
  for (const [smallest, largest] of ranges) {
    buf.writeUInt32BE(largest, at);
    buf.writeUInt32BE(smallest, at + 4);
    at += ACK_RANGE_SIZE;
  }
  return buf;
}

/**
 * Parse one datagram. Malformed input gives null, never an exception.
 * @param {Buffer} buf
 * @returns {null|{type: 'data', packetNumber: number, offset: number, fin: boolean, payload: Buffer}
 *   |{type: 'ack', ackDelay: number, ranges: Array<[number, number]>}}
 */
function decode(buf) {
  if (!Buffer.isBuffer(buf) || buf.length < 1) return null;
  if (buf[0] === DATA) {
    if (buf.length < DATA_HEADER_SIZE) return null;
    const length = buf.readUInt16BE(12);
    if (buf.length !== DATA_HEADER_SIZE + length) return null;
    const flags = buf[1];
    if ((flags & ~FLAG_FIN) !== 0) return null;
    return {
      type: 'data',
      packetNumber: buf.readUInt32BE(2),
      offset: buf.readUIntBE(6, 6),
      fin: (flags & FLAG_FIN) !== 0,
      payload: buf.subarray(DATA_HEADER_SIZE),
    };
  }
  if (buf[0] === ACK) {
    if (buf.length < ACK_HEADER_SIZE) return null;
    const count = buf[5];
    if (count === 0 || buf.length !== ACK_HEADER_SIZE + ACK_RANGE_SIZE * count) return null;
    const ranges = [];
    let at = ACK_HEADER_SIZE;
    let below = Infinity;
    for (let i = 0; i < count; i++) {
      const largest = buf.readUInt32BE(at);
      const smallest = buf.readUInt32BE(at + 4);
      // Ranges must be ordered newest first, disjoint and non-adjacent.
      if (smallest > largest || largest + 1 >= below) return null;
      ranges.push([smallest, largest]);
      below = smallest;
      at += ACK_RANGE_SIZE;
    }
    return { type: 'ack', ackDelay: buf.readUInt32BE(1) / 1000, ranges };
  }
  return null;
}

module.exports = {
  encodeData,
  encodeAck,
  decode,
  DATA_HEADER_SIZE,
  MAX_OFFSET,
};
