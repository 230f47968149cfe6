'use strict';
// Real mode over a real tunnel: the lab's Sender and Receiver over a minimalt connection's
// unreliable datagram channel, through the bridge, on loopback, directly and through the link
// emulator (a child process). Bounded: 300 kB, 15 s; 250 kB, 20 s through the emulator.

const crypto = require('node:crypto');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { runMinimaltTransfer, createMinimaltPair } = require('../../js/lab');
const { shutdownAndCheck, childPids, commandLine, isRunning } = require('./helpers/net');

function relayPids() {
  return childPids().filter((pid) => commandLine(pid).includes('minimalt.testing.link'));
}

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

test('a lab transfer through the link emulator (20 ms each way, 2 % loss) arrives byte-identical, sees the delay and leaves no relay running', async () => {
  const data = crypto.randomBytes(250000);
  const result = await runMinimaltTransfer({
    data,
    controller: 'cubic',
    link: { delay: '20ms', loss: '2%', seed: 7 },
    timeoutMs: 20000,
  });
  expect(result.received.equals(data)).toBe(true);
  // The relay was in the path: no round trip is shorter than its 2 x 20 ms (loopback alone
  // is a few ms), and its drops were repaired by the lab's retransmissions.
  expect(result.sender.rttMs.min).toBeGreaterThanOrEqual(40);
  expect(result.sender.rttMs.smoothed).toBeGreaterThanOrEqual(40);
  expect(result.sender.packetsLost).toBeGreaterThan(0);
  expect(result.sender.bytesRetransmitted).toBeGreaterThan(0);
  // runMinimaltTransfer stopped the relay before resolving.
  expect(result.relay.pid).toEqual(expect.any(Number));
  expect(isRunning(result.relay.pid)).toBe(false);
  expect(relayPids()).toEqual([]);
}, 40000);

test('a pair through the link emulator carries datagrams via the relay, and close() stops it', async () => {
  const pair = await createMinimaltPair({ link: { delay: '20ms' } });
  let closed = false;
  try {
    expect(relayPids()).toEqual([pair.relay.pid]);
    const arrived = new Promise((resolve) => {
      pair.b.onMessage((buf) => pair.b.send(buf));
      pair.a.onMessage((buf) => resolve(Number(buf.toString())));
    });
    const timer = setInterval(() => pair.a.send(Buffer.from(String(pair.a.now()))), 100);
    let sentAt;
    try {
      sentAt = await arrived;
    } finally {
      clearInterval(timer);
    }
    expect(pair.a.now() - sentAt).toBeGreaterThanOrEqual(40);
    await pair.close();
    closed = true;
    expect(isRunning(pair.relay.pid)).toBe(false);
    expect(relayPids()).toEqual([]);
  } finally {
    if (!closed) await pair.close();
  }
}, 30000);

test('a bad link option is refused before anything starts', async () => {
  await expect(createMinimaltPair({ link: { latency: '20ms' } })).rejects.toMatchObject({
    code: 'ERR_INVALID_ARG_VALUE',
  });
  await expect(createMinimaltPair({ link: { delay: 'soon' } })).rejects.toMatchObject({ code: 'ERR_LAB_LINK' });
  expect(relayPids()).toEqual([]);
});

test('minimalt-lab minimalt runs a transfer through the link emulator from the command line', async () => {
  const cli = path.join(__dirname, '..', '..', 'js', 'lab', 'cli.js');
  const args = [cli, 'minimalt', '--bytes', '100000', '--controller', 'newreno', '--delay', '20ms', '--loss', '1%'];
  const { code, stdout, stderr } = await new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 30000 }, (error, out, err) =>
      resolve({ code: error ? error.code : 0, stdout: out, stderr: err }),
    );
  });
  expect(stderr).toBe('');
  expect(code).toBe(0);
  expect(stdout).toMatch(/^newreno: 100000 bytes over a minimalt tunnel through the link emulator \(delay 20ms, loss 1%\)/);
  expect(stdout).toContain('byte-identical');
  expect(Number(stdout.match(/rtt min ([\d.]+) ms/)[1])).toBeGreaterThanOrEqual(40);
}, 40000);
