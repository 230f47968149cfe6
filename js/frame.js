'use strict';
/**
 * Frame codec of the bridge pipe (docs/bridge.md): a 4-byte big-endian length, then one
 * msgpack map with a string `t`. Frames that carry bytes (`data`, `dgram`) are `{t, h, d}`
 * with `d` a msgpack bin; their header is built by hand so the payload is written to the
 * pipe as it is, never copied.
 */

const { Encoder, Decoder } = require('@msgpack/msgpack');

/** Largest msgpack body of one frame, either direction. */
const MAX_FRAME = 4 << 20;

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

class FrameError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FrameError';
    this.code = 'EMLTBRIDGE';
  }
}

/**
 * @param {object} frame a map with a string `t`
 * @returns {Buffer} length prefix and body
 */
function encodeFrame(frame) {
  const body = encoder.encodeSharedRef(frame);
  if (body.length > MAX_FRAME) throw new FrameError(`frame of ${body.length} bytes exceeds ${MAX_FRAME}`);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

const kindPrefixes = new Map();

/** fixmap(3), "t", kind, "h" */
function kindPrefix(kind) {
  let prefix = kindPrefixes.get(kind);
  if (prefix === undefined) {
    prefix = Buffer.concat([Buffer.from([0x83, 0xa1, 0x74]), Buffer.from(encoder.encode(kind)), Buffer.from([0xa1, 0x68])]);
    kindPrefixes.set(kind, prefix);
  }
  return prefix;
}

/**
 * The header of `{t: kind, h, d: <length bytes>}`, length prefix included; the `length`
 * payload bytes follow it on the pipe.
 * @param {string} kind
 * @param {number} h a handle (non-negative integer)
 * @param {number} length
 * @returns {Buffer}
 */
function encodeDataHeader(kind, h, length) {
  const prefix = kindPrefix(kind);
  const intSize = h < 0x80 ? 1 : h <= 0xff ? 2 : h <= 0xffff ? 3 : h <= 0xffffffff ? 5 : 9;
  const headLength = prefix.length + intSize + 2 + 5;
  const out = Buffer.allocUnsafe(4 + headLength);
  out.writeUInt32BE(headLength + length, 0);
  let pos = 4 + prefix.copy(out, 4);
  if (intSize === 1) {
    out[pos++] = h;
  } else if (intSize === 2) {
    out[pos++] = 0xcc;
    out[pos++] = h;
  } else if (intSize === 3) {
    out[pos++] = 0xcd;
    pos = out.writeUInt16BE(h, pos);
  } else if (intSize === 5) {
    out[pos++] = 0xce;
    pos = out.writeUInt32BE(h, pos);
  } else {
    out[pos++] = 0xcf;
    pos = out.writeBigUInt64BE(BigInt(h), pos);
  }
  out[pos++] = 0xa1;
  out[pos++] = 0x64; // "d"
  out[pos++] = 0xc6; // bin 32
  out.writeUInt32BE(length, pos);
  return out;
}

/** Turns the chunks read from the pipe into frames, whatever their boundaries. */
class FrameDecoder {
  constructor(maxFrame = MAX_FRAME) {
    this.maxFrame = maxFrame;
    this._chunks = [];
    this._length = 0;
    this._need = 0;
  }

  /**
   * @param {Buffer} chunk
   * @returns {object[]} the frames `chunk` completes; a bin field is a Buffer viewing the
   *   pipe's memory (no copy)
   * @throws {FrameError} on a frame that is too long, not msgpack, or not a map with `t`
   */
  push(chunk) {
    if (this._length > 0) {
      this._chunks.push(chunk);
      this._length += chunk.length;
      if (this._length < this._need) return [];
      chunk = Buffer.concat(this._chunks, this._length);
      this._chunks = [];
      this._length = 0;
    }
    const frames = [];
    let pos = 0;
    while (chunk.length - pos >= 4) {
      const size = chunk.readUInt32BE(pos);
      if (size > this.maxFrame) throw new FrameError(`frame of ${size} bytes exceeds ${this.maxFrame}`);
      const end = pos + 4 + size;
      if (end > chunk.length) break;
      frames.push(decodeBody(chunk.subarray(pos + 4, end)));
      pos = end;
    }
    if (pos < chunk.length) {
      const rest = chunk.subarray(pos);
      this._chunks.push(rest);
      this._length = rest.length;
      this._need = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : 4;
    }
    return frames;
  }
}

function decodeBody(body) {
  let frame;
  try {
    frame = decoder.decode(body);
  } catch (error) {
    throw new FrameError(`frame is not msgpack: ${error.message}`);
  }
  if (frame === null || typeof frame !== 'object' || typeof frame.t !== 'string') {
    throw new FrameError("frame is not a map with a string 't'");
  }
  return frame;
}

/** A bin field as a Buffer sharing its memory. */
function asBuffer(bytes) {
  if (Buffer.isBuffer(bytes)) return bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

module.exports = { MAX_FRAME, FrameError, FrameDecoder, encodeFrame, encodeDataHeader, asBuffer };
