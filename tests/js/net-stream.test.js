'use strict';
// Bulk transfer and backpressure through a real bridge child: 100 MB with matching sha256 and
// bounded memory in Node and in the child, and write() returning false (then 'drain') when
// the other side does not read, in both directions.

const crypto = require('node:crypto');
const { Readable, pipeline } = require('node:stream');
const { minimalt, waitFor, listen, close, collect, rssOf, shutdownAndCheck } = require('./helpers/net');

afterAll(shutdownAndCheck);

const MB = 1024 * 1024;

/** 64 KiB chunks of random bytes, `total` in all, hashed as they are produced. */
function randomSource(total, hash) {
  let produced = 0;
  return new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const chunk = crypto.randomBytes(Math.min(64 * 1024, total - produced));
      produced += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

test('100 MB cross the bridge twice with a matching sha256 and bounded memory in Node and in the child', async () => {
  const total = 100 * MB;
  const server = await listen('sink', (socket) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    socket.on('data', (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    socket.on('end', () => socket.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
  });
  try {
    const pid = minimalt.bridgeInfo().pid;
    global.gc?.();
    const before = { node: process.memoryUsage().rss, child: rssOf(pid).rss };
    const peak = { node: before.node, child: before.child };
    const sampler = setInterval(() => {
      peak.node = Math.max(peak.node, process.memoryUsage().rss);
      peak.child = Math.max(peak.child, rssOf(pid).rss);
    }, 50);
    const sent = crypto.createHash('sha256');
    const started = process.hrtime.bigint();
    const socket = minimalt.connect({ record: server.record(), service: 'sink' });
    const reply = collect(socket, 120000);
    const piped = new Promise((resolve, reject) => {
      pipeline(randomSource(total, sent), socket, (error) => (error ? reject(error) : resolve()));
    });
    const answer = JSON.parse((await reply).toString());
    await piped;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    clearInterval(sampler);
    const growth = { node: (peak.node - before.node) / MB, child: (peak.child - before.child) / MB };
    console.log(
      `100 MB through the bridge (both tunnel ends in one child): ${(total / seconds / 1e6).toFixed(1)} MB/s; ` +
        `peak RSS growth: node ${growth.node.toFixed(1)} MiB, python child ${growth.child.toFixed(1)} MiB`,
    );
    expect(answer.bytes).toBe(total);
    expect(answer.sha256).toBe(sent.digest('hex'));
    // Bounded: far below the 100 MB that went through (credit windows are 512 KiB per stream,
    // the connection's send buffer 1 MiB, minimalt's window 1 MiB; the rest is GC slack).
    expect(growth.child).toBeLessThan(40);
    expect(growth.node).toBeLessThan(64);
  } finally {
    await close(server);
  }
}, 120000);

/**
 * Write `chunk` to `writable` until write() returns false and no 'drain' follows within
 * `quietMs`: the writer is held back. Returns the bytes written (the last chunk included).
 */
async function writeUntilHeldBack(writable, chunk, onChunk = () => {}, quietMs = 500) {
  let written = 0;
  for (;;) {
    written += chunk.length;
    onChunk(chunk);
    if (written > 64 * MB) throw new Error('the writer was never held back');
    if (!writable.write(chunk)) {
      const drained = await waitFor(writable, 'drain', quietMs).then(
        () => true,
        () => false,
      );
      if (!drained) return written;
    }
  }
}

test('a client writing to a server that does not read is held back (write() false, no drain) until it reads', async () => {
  let serverSide;
  let onAccepted;
  const accepted = new Promise((resolve) => {
    onAccepted = resolve;
  });
  const server = await listen('slow', (socket) => {
    serverSide = socket;
    socket.pause();
    onAccepted();
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'slow' });
    const sent = crypto.createHash('sha256');
    const written = await writeUntilHeldBack(socket, crypto.randomBytes(64 * 1024), (c) => sent.update(c));
    await accepted;
    // Held back after a few windows' worth (credit 512 KiB, connection buffer 1 MiB, the
    // peer's minimalt window 1 MiB, the server socket's 512 KiB), not after 64 MB.
    expect(written).toBeLessThan(8 * MB);
    expect(serverSide.bytesRead).toBeLessThan(written);
    const received = crypto.createHash('sha256');
    let bytes = 0;
    const drained = waitFor(socket, 'drain');
    serverSide.on('data', (data) => {
      bytes += data.length;
      received.update(data);
    });
    const ended = waitFor(serverSide, 'end');
    serverSide.resume();
    await drained;
    socket.end();
    await ended;
    expect(bytes).toBe(written);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
  } finally {
    await close(server);
  }
});

test('a server writing to a client that does not read is held back (write() false, no drain) until it reads', async () => {
  let serverSide;
  let onAccepted;
  const accepted = new Promise((resolve) => {
    onAccepted = resolve;
  });
  const server = await listen('push', (socket) => {
    serverSide = socket;
    onAccepted();
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'push' });
    socket.pause();
    socket.write('go');
    await accepted;
    const written = await writeUntilHeldBack(serverSide, Buffer.alloc(64 * 1024, 1));
    expect(written).toBeLessThan(8 * MB);
    expect(socket.readableLength).toBeLessThan(written);
    const drained = waitFor(serverSide, 'drain');
    const all = collect(socket);
    socket.resume();
    await drained;
    serverSide.end();
    socket.end();
    expect((await all).length).toBe(written);
  } finally {
    await close(server);
  }
});
