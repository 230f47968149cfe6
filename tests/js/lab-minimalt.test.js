'use strict';
// Real mode over a real tunnel: the lab's Sender and Receiver over a minimalt connection's
// unreliable datagram channel, through the bridge, on loopback. Bounded: 300 kB, 15 s.

const crypto = require('node:crypto');
const { runMinimaltTransfer, createMinimaltPair } = require('../../js/lab');
const { shutdownAndCheck } = require('./helpers/net');

afterAll(shutdownAndCheck);

test('a lab transfer over a real minimalt tunnel arrives byte-identical', async () => {
  const data = crypto.randomBytes(300000);
  const result = await runMinimaltTransfer({ data, controller: 'cubic', timeoutMs: 15000 });
  expect(result.received.length).toBe(data.length);
  expect(result.received.equals(data)).toBe(true);
  // Every byte crossed as minimalt datagrams of at most 1100 bytes.
  expect(result.receiver.packetsReceived).toBeGreaterThanOrEqual(Math.ceil(data.length / 1100));
}, 30000);

test('the minimalt transport carries datagrams both ways between the two ends', async () => {
  const pair = await createMinimaltPair();
  try {
    expect(pair.a.maxDatagramSize).toBe(pair.b.maxDatagramSize);
    const got = [];
    const arrived = new Promise((resolve) => {
      pair.b.onMessage((buf) => {
        got.push(buf.toString());
        pair.b.send(Buffer.from(`ack ${buf}`));
      });
      pair.a.onMessage((buf) => resolve(buf.toString()));
    });
    // Unreliable by design: repeat until one round trip made it.
    const timer = setInterval(() => pair.a.send(Buffer.from('probe')), 50);
    try {
      expect(await arrived).toBe('ack probe');
    } finally {
      clearInterval(timer);
    }
    expect(got[0]).toBe('probe');
  } finally {
    await pair.close();
  }
});
