#!/usr/bin/env node
'use strict';
// An echo server over minimalt. Prints its record (what a client needs) on the first line of
// stdout, then echoes every connection until Ctrl-C or SIGTERM.
//
//   node examples/node/echo-server.js [port] > record.txt
//   node examples/node/echo-client.js "$(cat record.txt)" hello

const minimalt = require('../../js'); // in your project: require('minimalt')

const port = Number(process.argv[2] ?? 0);
const server = minimalt.createServer({ service: 'echo' }, (socket) => {
  console.error(`connection from ${socket.remoteAddress}:${socket.remotePort}`);
  socket.on('error', (error) => console.error(`connection error: ${error.code} ${error.message}`));
  socket.pipe(socket);
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${server.record()}\n`);
  console.error(`echo server on udp://127.0.0.1:${server.address().port}`);
});
server.on('error', (error) => {
  console.error(`echo-server: ${error.code}: ${error.message}`);
  process.exit(1);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => server.close(() => console.error('echo server closed')));
}
