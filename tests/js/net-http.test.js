'use strict';
// Node's own http client and server over minimalt: an http.Server fed with minimalt
// connections, and http.request with createConnection (one connection per request, and a
// keep-alive Agent reusing one connection).

const http = require('node:http');
const crypto = require('node:crypto');
const { minimalt, waitFor, listen, close, collect, shutdownAndCheck } = require('./helpers/net');

afterAll(shutdownAndCheck);

/** An http.Server answering with what it received, behind a minimalt server. */
async function httpOverMinimalt() {
  const httpServer = http.createServer(async (req, res) => {
    const body = await collect(req);
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        method: req.method,
        url: req.url,
        bytes: body.length,
        sha256: crypto.createHash('sha256').update(body).digest('hex'),
        remote: req.socket.remoteAddress,
      }),
    );
  });
  const server = await listen('http', (socket) => httpServer.emit('connection', socket));
  return { server, httpServer };
}

function request(options, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(options, async (res) => {
      try {
        resolve({ res, body: await collect(res) });
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('http.request with createConnection talks to an http.Server over minimalt', async () => {
  const { server } = await httpOverMinimalt();
  try {
    const record = server.record();
    const createConnection = () => minimalt.connect({ record, service: 'http' });
    const get = await request({ createConnection, path: '/hello?x=1', headers: { host: 'example.test' } });
    expect(get.res.statusCode).toBe(200);
    expect(get.res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(get.body)).toMatchObject({ method: 'GET', url: '/hello?x=1', bytes: 0, remote: '127.0.0.1' });
    const payload = crypto.randomBytes(1 << 20);
    const post = await request({ createConnection, method: 'POST', path: '/upload' }, payload);
    expect(JSON.parse(post.body)).toMatchObject({
      method: 'POST',
      bytes: payload.length,
      sha256: crypto.createHash('sha256').update(payload).digest('hex'),
    });
  } finally {
    await close(server);
  }
});

test('a keep-alive http.Agent reuses one minimalt connection for several requests', async () => {
  const { server } = await httpOverMinimalt();
  let opened = 0;
  class MinimaltAgent extends http.Agent {
    createConnection() {
      opened++;
      return minimalt.connect({ record: server.record(), service: 'http' });
    }
  }
  const agent = new MinimaltAgent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 5; i++) {
      const { res, body } = await request({ agent, path: `/n/${i}` });
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(body).url).toBe(`/n/${i}`);
    }
    expect(opened).toBe(1);
  } finally {
    const sockets = Object.values(agent.freeSockets).flat();
    const closed = sockets.map((socket) => waitFor(socket, 'close'));
    agent.destroy();
    await Promise.all(closed);
    await close(server);
  }
});
