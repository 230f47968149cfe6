'use strict';
// The Node side of the bridge's frame codec (docs/bridge.md): length-prefixed msgpack maps,
// data frames with a hand-built header, decoding across any chunk boundaries.

const crypto = require('node:crypto');
const { decode } = require('@msgpack/msgpack');
const { FrameDecoder, FrameError, encodeFrame, encodeDataHeader } = require('../../js/frame');

test('a frame is a big-endian length then a msgpack map', () => {
  const wire = encodeFrame({ t: 'credit', h: 3, n: 4096 });
  expect(wire.readUInt32BE(0)).toBe(wire.length - 4);
  expect(decode(wire.subarray(4))).toEqual({ t: 'credit', h: 3, n: 4096 });
});

test.each([0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40])(
  'a data header for handle %d plus the payload is an ordinary frame with a bin',
  (h) => {
    const payload = Buffer.from(Array.from({ length: 700 }, (_, i) => i & 0xff));
    const wire = Buffer.concat([encodeDataHeader('data', h, payload.length), payload]);
    const [frame] = new FrameDecoder().push(wire);
    expect(frame.t).toBe('data');
    expect(frame.h).toBe(h);
    expect(Buffer.from(frame.d).equals(payload)).toBe(true);
  },
);

test('frames decode the same whatever the chunk boundaries, bins viewing the pipe memory', () => {
  const frames = [
    { t: 'end', h: 5 },
    { t: 'data', h: 7, d: Buffer.alloc(100000, 9) },
    { t: 'credit', h: 7, n: 123456789 },
    { t: 'data', h: 9, d: Buffer.alloc(0) },
  ];
  const digest = (f) => ({ ...f, ...(f.d ? { d: crypto.createHash('sha256').update(f.d).digest('hex') } : {}) });
  const wire = Buffer.concat(frames.map((f) => encodeFrame(f)));
  for (const size of [1, 3, 4, 5, 1000, 65536, wire.length]) {
    const decoder = new FrameDecoder();
    const out = [];
    for (let pos = 0; pos < wire.length; pos += size) out.push(...decoder.push(wire.subarray(pos, pos + size)));
    expect(out.map(digest)).toEqual(frames.map(digest));
  }
  // Read in one chunk, a bin is a view of that chunk, not a copy.
  const [, big] = new FrameDecoder().push(wire);
  expect(big.d.buffer).toBe(wire.buffer);
});

test('an oversized or malformed frame is a FrameError with code EMLTBRIDGE', () => {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(5 << 20);
  expect(() => new FrameDecoder().push(length)).toThrow(FrameError);
  const notMap = Buffer.from([0, 0, 0, 1, 0x01]);
  expect(() => new FrameDecoder().push(notMap)).toThrow(expect.objectContaining({ code: 'EMLTBRIDGE' }));
});
