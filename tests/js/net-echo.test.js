'use strict';
// The Node module against a real bridge child on 127.0.0.1: net's events and their order,
// echo, half-close, many connections at once, properties, timeouts, datagrams and the
// promise helpers.

const crypto = require('node:crypto');
const { minimalt, waitFor, listen, close, collect, shutdownAndCheck } = require('./helpers/net');

const echo = (socket) => socket.pipe(socket);

afterAll(shutdownAndCheck);

test('a client socket emits connect, ready, data, end, close in that order and gets its bytes back', async () => {
  const server = await listen('echo', echo);
  try {
    const events = [];
    const socket = minimalt.connect({ record: server.record(), service: 'echo' });
    for (const event of ['connect', 'ready', 'end', 'finish']) socket.on(event, () => events.push(event));
    socket.on('close', (hadError) => events.push(`close:${hadError}`));
    expect(socket.connecting).toBe(true);
    expect(socket.readyState).toBe('opening');
    const closed = waitFor(socket, 'close');
    socket.end('hello over minimalt');
    const data = await collect(socket);
    await closed;
    expect(data.toString()).toBe('hello over minimalt');
    expect(events.slice(0, 3)).toEqual(['connect', 'ready', 'finish']);
    expect(events.indexOf('end')).toBeGreaterThan(1);
    expect(events[events.length - 1]).toBe('close:false');
    expect(socket.bytesWritten).toBe(19);
    expect(socket.bytesRead).toBe(19);
    expect(socket.readyState).toBe('closed');
  } finally {
    await close(server);
  }
});

test('both sides see each other\'s addresses and the service, like net sockets', async () => {
  let serverSide;
  const server = await listen('echo', (socket) => {
    serverSide = socket;
    echo(socket);
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'echo' });
    await waitFor(socket, 'connect');
    socket.write('x');
    await waitFor(socket, 'data');
    const address = server.address();
    expect(address).toEqual({ address: '127.0.0.1', family: 'IPv4', port: expect.any(Number) });
    expect(socket.remoteAddress).toBe('127.0.0.1');
    expect(socket.remotePort).toBe(address.port);
    expect(socket.remoteFamily).toBe('IPv4');
    expect(socket.service).toBe('echo');
    expect(serverSide.service).toBe('echo');
    expect(serverSide.remoteAddress).toBe('127.0.0.1');
    expect(serverSide.remotePort).toBe(socket.localPort);
    expect(serverSide.localPort).toBe(address.port);
    expect(serverSide.server).toBe(server);
    expect(server.record()).toMatch(/^mlt1:/);
    expect(server.identity).toMatch(/^[0-9a-f]{64}$/);
    const closed = waitFor(socket, 'close');
    socket.end();
    await closed;
  } finally {
    await close(server);
  }
});

test('half-close: the client ends its side and still reads the answer the server sends after its end', async () => {
  const server = await listen(
    'count',
    async (socket) => {
      const body = await collect(socket); // 'end' arrives, our side stays open
      socket.end(`got ${body.length} bytes`);
    },
    { allowHalfOpen: true },
  );
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'count' });
    const closed = waitFor(socket, 'close');
    const answer = collect(socket);
    socket.write(Buffer.alloc(300000, 7));
    socket.end();
    await waitFor(socket, 'finish');
    expect(socket.writable).toBe(false);
    expect((await answer).toString()).toBe('got 300000 bytes');
    await closed;
  } finally {
    await close(server);
  }
});

test('without allowHalfOpen a socket ends its side when the peer ends', async () => {
  let serverClosed;
  const server = await listen('quiet', (socket) => {
    serverClosed = waitFor(socket, 'close');
    socket.resume();
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'quiet' });
    const closed = waitFor(socket, 'close');
    const ended = waitFor(socket, 'end'); // the server side ended automatically
    socket.end('bye');
    socket.resume();
    await ended;
    await serverClosed;
    await closed;
  } finally {
    await close(server);
  }
});

test('fifty connections in parallel each get their own 100 kB back intact', async () => {
  const server = await listen('echo', echo);
  try {
    const runs = Array.from({ length: 50 }, async () => {
      const payload = crypto.randomBytes(100000);
      const socket = minimalt.connect({ record: server.record(), service: 'echo', retrySafe: true });
      const closed = waitFor(socket, 'close', 30000);
      socket.end(payload);
      const back = await collect(socket, 30000);
      await closed;
      return back.equals(payload);
    });
    expect(await Promise.all(runs)).toEqual(Array(50).fill(true));
  } finally {
    await close(server);
  }
});

test('writes made before connect are delivered (retry-safe data rides in the first flight)', async () => {
  const server = await listen('echo', echo);
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'echo', retrySafe: true });
    const written = socket.write('early');
    expect(written).toBe(true);
    expect(socket.connecting).toBe(true);
    socket.end();
    expect((await collect(socket)).toString()).toBe('early');
  } finally {
    await close(server);
  }
});

test('setTimeout emits timeout after the given idle time without closing the socket', async () => {
  const server = await listen('echo', echo);
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'echo' });
    await waitFor(socket, 'connect');
    const started = Date.now();
    socket.setTimeout(150);
    expect(socket.timeout).toBe(150);
    await waitFor(socket, 'timeout', 3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(socket.destroyed).toBe(false);
    socket.setTimeout(0);
    const closed = waitFor(socket, 'close');
    socket.end();
    socket.resume();
    await closed;
  } finally {
    await close(server);
  }
});

test('server.close() stops accepting at once and emits close only after open connections end', async () => {
  let serverSide;
  const server = await listen('echo', (socket) => {
    serverSide = socket;
    echo(socket);
  });
  const socket = minimalt.connect({ record: server.record(), service: 'echo' });
  socket.write('ping');
  await waitFor(socket, 'data');
  let closed = false;
  server.close(() => {
    closed = true;
  });
  expect(server.listening).toBe(false);
  expect(server.address()).toBe(null);
  socket.write('still served');
  expect((await waitFor(socket, 'data'))[0].toString()).toBe('still served');
  expect(closed).toBe(false);
  socket.end();
  await waitFor(server, 'close', 10000);
  expect(closed).toBe(true);
  expect(serverSide.destroyed).toBe(true);
});

test('a connection carries unreliable datagrams both ways beside its stream', async () => {
  const server = await listen('dgram', (socket) => {
    socket.on('datagram', (message) => socket.sendDatagram(Buffer.concat([Buffer.from('re:'), message])));
    socket.resume();
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'dgram', retrySafe: true });
    const replies = new Set();
    socket.on('datagram', (message) => replies.add(message.toString()));
    await waitFor(socket, 'connect');
    expect(socket.maxDatagramSize).toBeGreaterThanOrEqual(1000);
    expect(() => socket.sendDatagram(Buffer.alloc(socket.maxDatagramSize + 1))).toThrow(
      expect.objectContaining({ code: 'EMSGSIZE' }),
    );
    // Unreliable: send until a reply arrives (loss on loopback is rare, not impossible).
    for (let i = 0; i < 50 && replies.size === 0; i++) {
      expect(socket.sendDatagram(`m${i}`)).toBe(true);
      await waitFor(socket, 'datagram', 200).catch(() => {});
    }
    expect([...replies][0]).toMatch(/^re:m\d+$/);
    const stats = await socket.getStats();
    expect(stats.service).toBe('dgram');
    expect(stats.smoothed_rtt).toBeGreaterThan(0);
    const closed = waitFor(socket, 'close');
    socket.end();
    socket.resume();
    await closed;
  } finally {
    await close(server);
  }
});

test('promise helpers: listen, connect and close', async () => {
  const server = await minimalt.promises.listen({ service: 'echo' }, echo);
  expect(server.listening).toBe(true);
  const socket = await minimalt.promises.connect({ record: server.record(), service: 'echo' });
  expect(socket.connecting).toBe(false);
  socket.end('p');
  expect((await collect(socket)).toString()).toBe('p');
  await minimalt.promises.close(server);
  await expect(minimalt.promises.close(server)).rejects.toMatchObject({ code: 'ERR_SERVER_NOT_RUNNING' });
});

test('every socket and server of the process share one bridge child', async () => {
  const a = await listen('a', echo);
  const b = await listen('b', echo);
  try {
    const pid = minimalt.bridgeInfo().pid;
    const sockets = [minimalt.connect({ record: a.record(), service: 'a' }), minimalt.connect({ record: b.record(), service: 'b' })];
    await Promise.all(sockets.map((s) => waitFor(s, 'connect')));
    expect(minimalt.bridgeInfo().pid).toBe(pid);
    expect(minimalt.bridgeInfo()).toMatchObject({ state: 'ready', protocol: 1 });
    const closed = sockets.map((s) => waitFor(s, 'close'));
    for (const s of sockets) s.end().resume();
    await Promise.all(closed);
  } finally {
    await close(a);
    await close(b);
  }
});
