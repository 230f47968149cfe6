'use strict';
/**
 * Byte sources for a sender's stream: `{ length, read(offset, length) -> Buffer }`.
 * `length` may be Infinity for a bulk flow that never ends.
 */

const PATTERN_PERIOD = 251;
const PATTERN_SPAN = 65536;
let patternBlock = null;

/**
 * The byte at stream offset `o` of a pattern stream is `o % 251` (a prime period, so a
 * misplaced chunk of any power-of-two size shows). Reads are zero-copy views of one
 * shared block.
 * @param {number} offset
 * @param {number} length at most 65536
 * @returns {Buffer}
 */
function patternBytes(offset, length) {
  if (patternBlock === null) {
    patternBlock = Buffer.alloc(PATTERN_PERIOD + PATTERN_SPAN);
    for (let i = 0; i < patternBlock.length; i++) patternBlock[i] = i % PATTERN_PERIOD;
  }
  const start = offset % PATTERN_PERIOD;
  return patternBlock.subarray(start, start + length);
}

/**
 * A stream of `length` pattern bytes (Infinity for an endless bulk transfer).
 * @param {number} length
 */
function patternSource(length) {
  return { length, read: patternBytes };
}

/**
 * A stream carrying the bytes of a buffer.
 * @param {Buffer} buffer
 */
function bufferSource(buffer) {
  return {
    length: buffer.length,
    read: (offset, length) => buffer.subarray(offset, offset + length),
  };
}

module.exports = { patternSource, bufferSource, patternBytes };
