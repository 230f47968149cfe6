'use strict';
// Errors reach Node as Errors with codes, through the events net uses ('error' then 'close'),
// and as rejections of the promise helpers.

const dgram = require('node:dgram');
const { minimalt, waitFor, waitForClose, listen, close, shutdownAndCheck } = require('./helpers/net');

afterAll(shutdownAndCheck);

/** The 'error' a socket emits, checking that 'close' (with hadError) follows it. */
async function errorThenClose(socket) {
  const order = [];
  socket.on('error', () => order.push('error'));
  socket.on('close', (hadError) => order.push(`close:${hadError}`));
  const closed = waitForClose(socket);
  const [error] = await waitFor(socket, 'error');
  await closed;
  expect(order).toEqual(['error', 'close:true']);
  return error;
}

test('a service the server does not offer is refused: ECONNREFUSED with the protocol code, then close', async () => {
  const server = await listen('echo', (socket) => socket.pipe(socket));
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'nope' });
    socket.write('anyone?');
    const error = await errorThenClose(socket);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('ECONNREFUSED');
    expect(error.mltCode).toBe(0x10); // ERR_UNKNOWN_SERVICE
    expect(error.message).toMatch(/nope/);
  } finally {
    await close(server);
  }
});

test('a server that resets its side makes the client read ECONNRESET', async () => {
  const server = await listen('reset', (socket) => {
    socket.once('data', () => socket.resetAndDestroy());
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'reset' });
    socket.write('trigger');
    const error = await errorThenClose(socket);
    expect(error.code).toBe('ECONNRESET');
    expect(error.mltCode).toBe(0x8); // ERR_APPLICATION
  } finally {
    await close(server);
  }
});

test('a server socket destroyed with an error aborts the connection: the client gets ECONNRESET', async () => {
  const server = await listen('fail', (socket) => {
    socket.on('error', () => {}); // the server's own error, handled there
    socket.once('data', () => socket.destroy(new Error('handler failed')));
  });
  try {
    const socket = minimalt.connect({ record: server.record(), service: 'fail' });
    socket.write('trigger');
    expect((await errorThenClose(socket)).code).toBe('ECONNRESET');
  } finally {
    await close(server);
  }
});

test('a malformed record is EMLTRECORD', async () => {
  const socket = minimalt.connect({ record: 'mlt1:AAAA', service: 'echo' });
  const error = await errorThenClose(socket);
  expect(error.code).toBe('EMLTRECORD');
  expect(error.syscall).toBe('connect');
});

test('a server that never answers is ETIMEDOUT after connectTimeout', async () => {
  // A record whose port nobody serves: take a live server's record, then close the server.
  const server = await listen('gone', () => {});
  const record = server.record();
  await close(server);
  const started = Date.now();
  const socket = minimalt.connect({ record, service: 'gone', connectTimeout: 300 });
  socket.write('hello?');
  const error = await errorThenClose(socket);
  expect(error.code).toBe('ETIMEDOUT');
  expect(Date.now() - started).toBeGreaterThanOrEqual(250);
});

test('listening on a UDP port already taken is an EADDRINUSE error event, not listening', async () => {
  const blocker = dgram.createSocket('udp4');
  blocker.bind(0, '127.0.0.1');
  await waitFor(blocker, 'listening');
  try {
    const server = minimalt.createServer({ service: 'x' });
    let listened = false;
    server.on('listening', () => {
      listened = true;
    });
    server.listen(blocker.address().port, '127.0.0.1');
    const [error] = await waitFor(server, 'error');
    expect(error.code).toBe('EADDRINUSE');
    expect(listened).toBe(false);
    expect(server.listening).toBe(false);
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test('the promise helpers reject with the coded error', async () => {
  await expect(minimalt.promises.connect({ record: 'mlt1:AAAA', service: 'x' })).rejects.toMatchObject({
    code: 'EMLTRECORD',
  });
  const blocker = dgram.createSocket('udp4');
  blocker.bind(0, '127.0.0.1');
  await waitFor(blocker, 'listening');
  try {
    await expect(
      minimalt.promises.listen({ service: 'x', port: blocker.address().port, host: '127.0.0.1' }),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test('bad arguments throw at once with Node-style codes', () => {
  expect(() => minimalt.connect({ service: 'x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  expect(() => minimalt.connect({ record: 'mlt1:x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  expect(() => minimalt.connect({ record: 'mlt1:x', service: 'x', connectTimeout: -1 })).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
  );
  expect(() => minimalt.createServer().listen(0)).toThrow(expect.objectContaining({ code: 'ERR_MISSING_OPTION' }));
  expect(() => minimalt.createServer({ service: 'x' }).listen(70000)).toThrow(
    expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }),
  );
  expect(() => minimalt.createServer({ service: 5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
});
