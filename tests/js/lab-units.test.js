'use strict';
// Unit tests of the lab's building blocks, each against its specification.

const { RangeSet } = require('../../js/lab/reliability/ranges');
const { encodeData, encodeAck, decode } = require('../../js/lab/reliability/packet');
const { RttEstimator } = require('../../js/lab/reliability/rtt');
const { LossDetection } = require('../../js/lab/reliability/loss-detection');
const { Pacer } = require('../../js/lab/reliability/pacer');
const { RecvStream } = require('../../js/lab/reliability/recv-stream');
const { DropTailQueue } = require('../../js/lab/sim/queue-droptail');
const { RandomLoss, GilbertElliottLoss } = require('../../js/lab/sim/loss');
const { WindowedMaxFilter } = require('../../js/lab/cc/windowed-filter');
const { createPrng } = require('../../js/lab');

describe('RangeSet', () => {
  test.each([
    ['appends above', [[0, 5], [10, 15]], [[0, 5], [10, 15]]],
    ['merges adjacent', [[0, 5], [5, 10]], [[0, 10]]],
    ['merges overlapping, out of order', [[10, 20], [0, 5], [4, 12]], [[0, 20]]],
    ['fills a hole exactly', [[0, 5], [10, 15], [5, 10]], [[0, 15]]],
    ['keeps disjoint ranges sorted', [[20, 25], [0, 5], [10, 15]], [[0, 5], [10, 15], [20, 25]]],
    ['swallows covered ranges', [[2, 3], [6, 7], [0, 10]], [[0, 10]]],
  ])('add: %s', (_name, adds, expected) => {
    const set = new RangeSet();
    for (const [a, b] of adds) set.add(a, b);
    expect(set.ranges).toEqual(expected);
  });

  test('remove splits, trims and deletes ranges', () => {
    const set = new RangeSet();
    set.add(0, 100);
    set.remove(10, 20);
    expect(set.ranges).toEqual([[0, 10], [20, 100]]);
    set.remove(0, 10);
    set.remove(90, 200);
    expect(set.ranges).toEqual([[20, 90]]);
  });

  test('covers, has and gaps', () => {
    const set = new RangeSet();
    set.add(0, 10);
    set.add(20, 30);
    expect(set.covers(0, 10)).toBe(true);
    expect(set.covers(5, 25)).toBe(false);
    expect(set.has(20)).toBe(true);
    expect(set.has(10)).toBe(false);
    expect(set.gaps(5, 35)).toEqual([[10, 20], [30, 35]]);
    expect(set.gaps(0, 10)).toEqual([]);
  });
});

describe('packet codec', () => {
  test('DATA and ACK round-trip', () => {
    const payload = Buffer.from('hello');
    expect(decode(encodeData(7, 2 ** 40, true, payload))).toEqual({
      type: 'data', packetNumber: 7, offset: 2 ** 40, fin: true, payload,
    });
    expect(decode(encodeAck(1.5, [[10, 20], [0, 5]]))).toEqual({
      type: 'ack', ackDelay: 1.5, ranges: [[10, 20], [0, 5]],
    });
  });

  const data = encodeData(1, 0, false, Buffer.alloc(10));
  const ack = encodeAck(0, [[10, 20], [0, 5]]);
  test.each([
    ['empty', Buffer.alloc(0)],
    ['unknown type', Buffer.from([9, 0, 0])],
    ['DATA shorter than its header', data.subarray(0, 13)],
    ['DATA shorter than its length field says', data.subarray(0, data.length - 1)],
    ['DATA with unknown flags', Buffer.concat([Buffer.from([1, 0x80]), data.subarray(2)])],
    ['ACK with no ranges', Buffer.from([2, 0, 0, 0, 0, 0])],
    ['ACK truncated mid-range', ack.subarray(0, ack.length - 2)],
    ['ACK ranges oldest first', encodeAck(0, [[0, 5], [10, 20]])],
    ['ACK ranges adjacent', encodeAck(0, [[6, 9], [0, 5]])],
    ['ACK range upside down', encodeAck(0, [[9, 6]])],
  ])('malformed input is dropped: %s', (_name, buf) => {
    expect(decode(buf)).toBeNull();
  });
});

describe('RttEstimator (RFC 9002 section 5)', () => {
  test('first sample, then smoothing with the ack delay subtracted', () => {
    const rtt = new RttEstimator({ maxAckDelay: 25 });
    expect(rtt.smoothedRtt).toBe(333);
    rtt.update(100, 0, 1000);
    expect([rtt.minRtt, rtt.smoothedRtt, rtt.rttVar]).toEqual([100, 100, 50]);
    rtt.update(120, 10, 1100);
    // adjusted = 120 - 10 = 110
    expect(rtt.rttVar).toBeCloseTo(0.75 * 50 + 0.25 * 10);
    expect(rtt.smoothedRtt).toBeCloseTo(0.875 * 100 + 0.125 * 110);
  });

  test('the ack delay is capped at max_ack_delay and never takes a sample below min_rtt', () => {
    const rtt = new RttEstimator({ maxAckDelay: 25 });
    rtt.update(100, 0, 0);
    rtt.update(200, 80, 1); // delay capped at 25: adjusted 175
    expect(rtt.smoothedRtt).toBeCloseTo(0.875 * 100 + 0.125 * 175);
    const other = new RttEstimator({ maxAckDelay: 25 });
    other.update(100, 0, 0);
    other.update(110, 20, 1); // 110 - 20 < min 100: use 110
    expect(other.smoothedRtt).toBeCloseTo(0.875 * 100 + 0.125 * 110);
  });
});

describe('LossDetection (RFC 9002 section 6)', () => {
  function sent(recovery, count, size = 1000) {
    for (let i = 0; i < count; i++) {
      recovery.onPacketSent({ packetNumber: recovery.sent.nextPacketNumber, timeSent: i, size });
    }
  }

  test('packet threshold 3 and time threshold 9/8', () => {
    const recovery = new LossDetection(new RttEstimator());
    sent(recovery, 5); // packets 0..4 sent at t = 0..4
    const result = recovery.onAck({ ackDelay: 0, ranges: [[4, 4]] }, 100);
    expect(result.rttUpdated).toBe(true);
    // 0 and 1 are 3 or more behind 4; 2 and 3 wait for the time threshold.
    expect(result.lost.map((p) => [p.packetNumber, p.lossTrigger])).toEqual([
      [0, 'reordering_threshold'],
      [1, 'reordering_threshold'],
    ]);
    const lossDelay = (9 / 8) * 96;
    expect(recovery.lossTime).toBeCloseTo(2 + lossDelay);
    expect(recovery.deadline()).toBe(recovery.lossTime);
    expect(recovery.bytesInFlight).toBe(2000);
    const timeout = recovery.onTimeout(recovery.lossTime);
    expect(timeout.probe).toBe(false);
    expect(timeout.lost.map((p) => [p.packetNumber, p.lossTrigger])).toEqual([[2, 'time_threshold']]);
    expect(recovery.onTimeout(recovery.lossTime).lost.map((p) => p.packetNumber)).toEqual([3]);
    expect(recovery.bytesInFlight).toBe(0);
  });

  test('the probe timeout doubles with each expiry and resets on an ack', () => {
    const rtt = new RttEstimator({ maxAckDelay: 25 });
    const recovery = new LossDetection(rtt);
    sent(recovery, 1);
    recovery.onAck({ ackDelay: 0, ranges: [[0, 0]] }, 100); // srtt 100, rttvar 50
    sent(recovery, 1);
    const pto = 100 + 4 * 50 + 25;
    expect(recovery.deadline()).toBe(0 + pto);
    expect(recovery.onTimeout(pto)).toEqual({ lost: [], probe: true });
    expect(recovery.deadline()).toBe(0 + 2 * pto);
    recovery.onTimeout(2 * pto);
    expect(recovery.deadline()).toBe(0 + 4 * pto);
    recovery.onAck({ ackDelay: 0, ranges: [[1, 1]] }, 400);
    expect(recovery.ptoCount).toBe(0);
    expect(recovery.deadline()).toBeNull();
  });

  test('a long run of lost packets is persistent congestion', () => {
    const rtt = new RttEstimator({ maxAckDelay: 25 });
    const recovery = new LossDetection(rtt);
    recovery.onPacketSent({ packetNumber: 0, timeSent: 0, size: 1000 });
    recovery.onAck({ ackDelay: 0, ranges: [[0, 0]] }, 10); // srtt 10, rttvar 5
    // (10 + 4 * 5 + 25) * 3 = 165 ms of consecutive losses
    for (let t = 20; t <= 400; t += 20) {
      recovery.onPacketSent({ packetNumber: recovery.sent.nextPacketNumber, timeSent: t, size: 1000 });
    }
    const last = recovery.sent.nextPacketNumber - 1;
    recovery.onPacketSent({ packetNumber: last + 1, timeSent: 410, size: 1000 });
    const result = recovery.onAck({ ackDelay: 0, ranges: [[last + 1, last + 1]] }, 420);
    expect(result.persistentCongestion).toBe(true);
  });
});

describe('Pacer', () => {
  test('after the burst, packets leave one packet time apart', () => {
    const pacer = new Pacer({ packetSize: 1000, burstPackets: 2 });
    const rate = 1e6; // bytes per second: 1 ms per packet
    let now = 0;
    const departures = [];
    for (let i = 0; i < 6; i++) {
      now = pacer.nextSendTime(now, 1000, rate);
      departures.push(now);
      pacer.onPacketSent(now, 1000, rate);
    }
    expect(departures.map((t) => Math.round(t * 1000) / 1000)).toEqual([0, 0, 1, 2, 3, 4]);
  });
});

describe('RecvStream', () => {
  test('reorders, drops duplicates and overlaps, and delivers each byte once in order', () => {
    const stream = new RecvStream();
    const out = [];
    const deliver = (chunk) => out.push(chunk.toString());
    stream.onChunk(6, Buffer.from('ghij'), true, deliver);
    stream.onChunk(3, Buffer.from('defg'), false, deliver);
    expect(out).toEqual([]);
    stream.onChunk(0, Buffer.from('abcd'), false, deliver);
    stream.onChunk(0, Buffer.from('ab'), false, deliver);
    expect(out.join('')).toBe('abcdefghij');
    expect(stream.isComplete()).toBe(true);
    expect(stream.onChunk(8, Buffer.from('xyz'), false, deliver)).toBe(false);
  });
});

describe('DropTailQueue', () => {
  test.each([
    ['packets', { packets: 3 }, 3],
    ['bytes', { bytes: 2500 }, 2],
  ])('a limit in %s drops arrivals beyond it', (_unit, config, accepted) => {
    const queue = new DropTailQueue(config);
    const results = [1, 2, 3, 4].map(() => queue.enqueue({ size: 1000 }, 0));
    expect(results.filter(Boolean)).toHaveLength(accepted);
    expect(results.slice(accepted)).not.toContain(true);
  });
});

describe('loss models', () => {
  test('random loss has the configured rate', () => {
    const loss = new RandomLoss(createPrng('random'), { rate: 0.1 });
    let lost = 0;
    for (let i = 0; i < 100000; i++) if (loss.lose()) lost++;
    expect(lost / 100000).toBeCloseTo(0.1, 2);
  });

  test('Gilbert-Elliott loss comes in bursts of mean length 1/r at the stationary rate', () => {
    const p = 0.02;
    const r = 0.25;
    const loss = new GilbertElliottLoss(createPrng('ge'), { p, r });
    let lost = 0;
    let bursts = 0;
    let previous = false;
    const n = 400000;
    for (let i = 0; i < n; i++) {
      const l = loss.lose();
      if (l) lost++;
      if (l && !previous) bursts++;
      previous = l;
    }
    expect(lost / n).toBeCloseTo(p / (p + r), 2);
    expect(lost / bursts).toBeGreaterThan(0.9 / r);
    expect(lost / bursts).toBeLessThan(1.1 / r);
  });
});

describe('Prng', () => {
  test('equal seeds give equal streams, forks are independent of draw order', () => {
    const a = createPrng(42);
    const b = createPrng('42');
    expect([a.random(), a.random()]).toEqual([b.random(), b.random()]);
    expect(a.fork('x').random()).toBe(createPrng(42).fork('x').random());
    expect(createPrng(42).random()).not.toBe(createPrng(43).random());
  });
});

describe('WindowedMaxFilter', () => {
  test('keeps the maximum of the last window and lets old maxima expire', () => {
    const filter = new WindowedMaxFilter(10);
    filter.update(100, 0);
    filter.update(50, 3);
    filter.update(70, 8);
    expect(filter.best).toBe(100);
    filter.update(60, 11);
    expect(filter.best).toBe(70);
    filter.update(10, 30);
    expect(filter.best).toBe(10);
  });
});

describe('CUBIC (RFC 9438)', () => {
  test('a loss multiplies the window by 0.7, which then grows back to W_max in K seconds, concave', () => {
    const { Cubic } = require('../../js/lab').controllers;
    const cubic = new Cubic({ maxDatagramSize: 1200 });
    const rtt = { latestRtt: 100, minRtt: 100, smoothedRtt: 100, rttVar: 10, hasSample: true };
    cubic.onRttSample({ time: 0, rtt });
    cubic.cwnd = 120000; // 100 segments
    cubic.ssthresh = 120000;
    cubic.onLoss({ time: 1000, packets: [{ packetNumber: 1, timeSent: 990, size: 1200 }], persistentCongestion: false, bytesInFlight: 0 });
    expect(cubic.cwnd).toBeCloseTo(84000);
    const k = Math.cbrt((120000 - 84000) / 1200 / 0.4); // seconds
    const cwndAt = {};
    // A full window acknowledged every RTT, in 10 ms slices.
    for (let t = 1010; t <= 1000 + 1000 * k + 10; t += 10) {
      const acked = cubic.cwnd / 10;
      cubic.onAck({ time: t, packets: [{ packetNumber: t, timeSent: t - 100, size: acked }], appLimited: false, bytesInFlight: 0 });
      cwndAt[t] = cubic.cwnd;
    }
    const at = (seconds) => cwndAt[1000 + 10 * Math.round(100 * seconds)];
    expect(at(k) / 120000).toBeGreaterThan(0.97);
    expect(at(k) / 120000).toBeLessThan(1.03);
    // Concave: halfway in time it is well past halfway back, on the curve
    // W_cubic(t) = C (t - K)^3 + W_max (cwnd tracks W_cubic one RTT ahead).
    expect(at(k / 2)).toBeGreaterThan((84000 + 120000) / 2);
    const wCubic = (t) => (0.4 * (t - k) ** 3 + 100) * 1200;
    expect(at(k / 2) / wCubic(k / 2 + 0.1)).toBeGreaterThan(0.98);
    expect(at(k / 2) / wCubic(k / 2 + 0.1)).toBeLessThan(1.02);
  });
});
