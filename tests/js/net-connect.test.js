'use strict';
// When a connection opens and ends, as net reports it: 'connect' once the server accepted the
// connection (a refusal is 'error' then 'close', never 'connect'), 0-RTT data and its end
// before that, per-write retry-safe marks, a paused socket told of a reset at once, and the
// remote address following a client that moves.

const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const { EventEmitter } = require('node:events');
const { minimalt, waitFor, waitForClose, listen, close, collect, shutdownAndCheck } = require('./helpers/net');
const { WINDOW, findPython } = require('../../js/bridge');

afterAll(shutdownAndCheck);

/** Resolves once `predicate()` holds, checking every few ms; rejects after `ms`. */
async function until(predicate, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("'connect' and 'ready' come once the server has the connection, after its 'connection'", async () => {
  const events = [];
  const server = await listen('echo', (socket) => {
    events.push('server:connection');
    socket.pipe(socket);
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'echo' });
    for (const event of ['connect', 'ready']) socket.on(event, () => events.push(`client:${event}`));
    expect(socket.connecting).toBe(true);
    expect(socket.pending).toBe(true);
    await waitFor(socket, 'connect');
    expect(events).toEqual(['server:connection', 'client:connect', 'client:ready']);
    expect(socket.connecting).toBe(false);
    expect(socket.readyState).toBe('open');
    expect(socket.remotePort).toBe(server.address().port);
    socket.end('x');
    expect(String(await collect(socket))).toBe('x');
  } finally {
    await close(server);
  }
});

test('a refused connection emits error (ECONNREFUSED, syscall connect) then close, and never connect', async () => {
  const server = await listen('echo', (socket) => socket.pipe(socket));
  try {
    const events = [];
    const socket = minimalt.connect({ record: server.record(), service: 'nope', retrySafe: true });
    for (const event of ['connect', 'ready', 'finish', 'error']) socket.on(event, () => events.push(event));
    socket.on('close', (hadError) => events.push(`close:${hadError}`));
    const closed = waitForClose(socket);
    socket.end('anyone?');
    const [error] = await waitFor(socket, 'error');
    await closed;
    expect(events).toEqual(['error', 'close:true']);
    expect(error.code).toBe('ECONNREFUSED');
    expect(error.syscall).toBe('connect');
    expect(error.mltCode).toBe(0x10);
    expect(socket.connecting).toBe(false);
  } finally {
    await close(server);
  }
});

test('promises.connect resolves once the server accepted and rejects a refusal', async () => {
  let accepted = false;
  const server = await listen('echo', (socket) => {
    accepted = true;
    socket.pipe(socket);
  });
  try {
    const socket = await minimalt.promises.connect({ record: server.record(), service: 'echo' });
    expect(accepted).toBe(true);
    expect(socket.connecting).toBe(false);
    socket.end('y');
    expect(String(await collect(socket))).toBe('y');
    await expect(minimalt.promises.connect({ record: server.record(), service: 'nope' })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
      syscall: 'connect',
    });
  } finally {
    await close(server);
  }
});

/**
 * A UDP relay in front of a server: the record names the relay, which forwards both ways
 * and, while `hold` is true, keeps the server's answers from the client. Until they pass, the
 * client has no answer: whatever the server receives came in the client's first flight.
 */
async function relayedServer(service, onConnection) {
  const server = minimalt.createServer({ service }, onConnection);
  const relay = dgram.createSocket('udp4');
  relay.bind(0, '127.0.0.1');
  await waitFor(relay, 'listening');
  server.listen({ port: 0, advertise: { host: '127.0.0.1', port: relay.address().port } });
  await waitFor(server, 'listening');
  const serverPort = server.address().port;
  let client = null;
  const held = [];
  const state = {
    server,
    hold: true,
    release() {
      state.hold = false;
      for (const msg of held.splice(0)) relay.send(msg, client.port, client.address);
    },
    async close() {
      await close(server);
      await new Promise((resolve) => relay.close(resolve));
    },
  };
  relay.on('message', (msg, from) => {
    if (from.port !== serverPort) {
      client = from;
      relay.send(msg, serverPort, '127.0.0.1');
    } else if (state.hold) {
      held.push(msg);
    } else {
      relay.send(msg, client.port, client.address);
    }
  });
  return state;
}

/** A server that answers each request with 'done' at its end; 'request' events (socket, text). */
async function requestServer() {
  const requests = new EventEmitter();
  const sockets = [];
  const relayed = await relayedServer('req', (socket) => {
    sockets.push(socket);
    const chunks = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => {
      requests.emit('request', socket, String(Buffer.concat(chunks)));
      socket.end('done');
    });
  });
  return Object.assign(relayed, { requests, sockets });
}

/** Send `text` and end, with these options; the socket, its answer and its close. */
function request(record, text, connectOptions, writeOptions) {
  const socket = minimalt.connect({ record, service: 'req', ...connectOptions });
  const events = [];
  for (const event of ['connect', 'finish']) socket.on(event, () => events.push(event));
  const closed = waitForClose(socket);
  const answer = collect(socket);
  if (writeOptions === undefined) socket.end(text);
  else socket.end(text, writeOptions);
  return { socket, events, answer, closed };
}

/** The request and its end reach the server in the first flight: before any answer. */
async function expectZeroRtt(connectOptions, writeOptions) {
  const relayed = await requestServer();
  try {
    const client = request(relayed.server.record(), 'early', connectOptions, writeOptions);
    const [, text] = await waitFor(relayed.requests, 'request');
    expect(text).toBe('early');
    expect(client.socket.connecting).toBe(true); // no answer has reached it
    relayed.release();
    expect(String(await client.answer)).toBe('done');
    await client.closed;
    expect(client.events).toEqual(['connect', 'finish']); // 'finish' after 'connect', as net
  } finally {
    await relayed.close();
  }
}

/** The request waits for the server's answer: a retry-safe one sent after it overtakes it. */
async function expectOneRoundTrip(connectOptions, writeOptions) {
  const relayed = await requestServer();
  try {
    const record = relayed.server.record();
    const client = request(record, 'late', connectOptions, writeOptions);
    const marker = request(record, 'marker', { retrySafe: true }); // same tunnel, 0-RTT
    const [markerSide, text] = await waitFor(relayed.requests, 'request');
    expect(text).toBe('marker');
    // The first connection's request, written before the marker, has not arrived (its Create
    // may have: it rides early when the connection is retry-safe).
    const others = relayed.sockets.filter((socket) => socket !== markerSide);
    expect(others.every((socket) => socket.bytesRead === 0)).toBe(true);
    expect(client.socket.connecting).toBe(true);
    relayed.release();
    const [, late] = await waitFor(relayed.requests, 'request');
    expect(late).toBe('late');
    expect(String(await client.answer)).toBe('done');
    expect(String(await marker.answer)).toBe('done');
    await Promise.all([client.closed, marker.closed]);
    expect(client.events).toEqual(['connect', 'finish']);
  } finally {
    await relayed.close();
  }
}

test('a retry-safe request and its end reach the server in the first flight, before connect (0-RTT)', async () => {
  await expectZeroRtt({ retrySafe: true });
});

test('data not retry-safe waits for the server to answer', async () => {
  await expectOneRoundTrip({});
});

test('write(data, { retrySafe: true }) rides the first flight on a connection opened without retrySafe', async () => {
  await expectZeroRtt({}, { retrySafe: true });
});

test('write(data, { retrySafe: false }) waits on a connection opened with retrySafe', async () => {
  await expectOneRoundTrip({ retrySafe: true }, { retrySafe: false });
});

test('write() checks its retrySafe option and listen() its advertise option', async () => {
  expect(() => minimalt.createServer({ service: 'x', advertise: { host: '127.0.0.1' } }).listen(0)).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
  );
  const socket = minimalt.connect({ record: 'mlt1:AAAA', service: 'x' });
  const closed = waitForClose(socket);
  socket.on('error', () => {});
  expect(() => socket.write('x', { retrySafe: 'yes' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  await closed;
});

test('retry-safe marks follow the writes they were given with, in order, across buffered writes', async () => {
  const server = await listen('echo', (socket) => socket.pipe(socket));
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'echo' });
    socket.cork(); // the writes reach the socket together (_writev), with three different marks
    socket.write('a', { retrySafe: true });
    socket.write(Buffer.from('b'), { retrySafe: true });
    socket.write('c');
    socket.write(new Uint8Array([100]), { retrySafe: false, encoding: 'utf8' });
    socket.write('e');
    socket.uncork();
    socket.end('f', { retrySafe: false });
    expect(String(await collect(socket))).toBe('abcdef');
  } finally {
    await close(server);
  }
});

test('a paused socket whose peer resets is told at once, without reading', async () => {
  let serverSide;
  const server = await listen('bulk', (socket) => {
    serverSide = socket;
    socket.on('error', () => {});
    // More than the paused client's credit, less than the connection's flow-control window,
    // so the server's writes all leave before the reset.
    socket.once('data', () => socket.write(Buffer.alloc(WINDOW + 65536)));
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'bulk' });
    socket.pause();
    socket.write('go');
    // The child has used all the credit this paused socket gave it: it reads nothing more.
    await until(() => socket.bytesRead >= WINDOW);
    const closed = waitForClose(socket);
    serverSide.resetAndDestroy();
    const [error] = await waitFor(socket, 'error', 5000);
    expect(error.code).toBe('ECONNRESET');
    expect(await closed).toEqual([true]);
  } finally {
    await close(server);
  }
});

test('an accepted socket follows a client that moves: remoteAddress/remotePort and a migrate event', async () => {
  const server = await listen('echo', (socket) => socket.pipe(socket));
  // A Python client that moves its UDP socket to a new port in the middle of the connection,
  // printing its port before and after, then waits for a line on stdin to close.
  const script = `
import asyncio, sys, minimalt
async def main():
    loop = asyncio.get_running_loop()
    async with minimalt.Client(local_host="127.0.0.1") as client:
        conn = await client.connect(sys.argv[1], "echo")
        conn.write(b"one"); await conn.readexactly(3)
        print(conn.get_extra_info("sockname")[1], flush=True)
        print((await client.rebind())[1], flush=True)
        conn.write(b"two"); await conn.readexactly(3)
        await loop.run_in_executor(None, sys.stdin.readline)
        conn.close(); await conn.wait_closed()
minimalt.run(main())
`;
  const child = spawn(findPython(), ['-c', script, server.record()], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = waitFor(child, 'exit', 20000);
  try {
    const lines = [];
    child.stdout.on('data', (chunk) => lines.push(...String(chunk).split('\n').filter(Boolean)));
    const [serverSide] = await waitFor(server, 'connection');
    const [moved] = await waitFor(serverSide, 'migrate');
    await until(() => lines.length >= 2);
    const [before, after] = lines.map(Number);
    expect(after).not.toBe(before);
    expect(moved).toEqual({ address: '127.0.0.1', family: 'IPv4', port: after });
    expect(serverSide.remotePort).toBe(after);
    expect(serverSide.remoteAddress).toBe('127.0.0.1');
    child.stdin.end('\n');
    expect(await exited).toEqual([0, null]);
  } finally {
    if (child.exitCode === null) child.kill();
    await close(server);
  }
});
