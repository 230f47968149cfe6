'use strict';
// Real mode: the same Sender and Receiver over two real UDP sockets on 127.0.0.1, in real
// time. Bounded: 300 kB, a 5 s limit, sockets closed afterwards by runUdpTransfer.

const crypto = require('node:crypto');
const dgram = require('node:dgram');
const { runUdpTransfer, createUdpPair } = require('../../js/lab');

test('a transfer over real loopback UDP sockets arrives byte-identical', async () => {
  const data = crypto.randomBytes(300000);
  const result = await runUdpTransfer({ data, controller: 'cubic', timeoutMs: 5000 });
  expect(result.received.length).toBe(data.length);
  expect(result.received.equals(data)).toBe(true);
  expect(result.receiver.packetsReceived).toBeGreaterThanOrEqual(Math.ceil(data.length / 1186));
});

/** Resolve with the next datagram on `socket`, or reject after `ms`. */
function nextMessage(socket, ms = 2000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error('no datagram arrived'));
    }, ms);
    function onMessage(msg) {
      clearTimeout(timer);
      resolve(msg);
    }
    socket.once('message', onMessage);
  });
}

test('a UDP transport ignores datagrams from anyone but its peer', async () => {
  const pair = await createUdpPair();
  const stranger = dgram.createSocket('udp4');
  try {
    const received = [];
    pair.b.onMessage((buf) => received.push(buf.toString()));
    let arrived = nextMessage(pair.b.socket);
    stranger.send('stranger', pair.b.socket.address().port, '127.0.0.1');
    await arrived;
    arrived = nextMessage(pair.b.socket);
    pair.a.send(Buffer.from('peer'));
    await arrived;
    expect(received).toEqual(['peer']);
  } finally {
    await new Promise((resolve) => stranger.close(resolve));
    await pair.close();
  }
});
