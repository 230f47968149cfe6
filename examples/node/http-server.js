#!/usr/bin/env node
'use strict';
// Node's own http.Server, fed by minimalt connections instead of TCP. Prints its record on
// the first line of stdout; answers every request with JSON describing it.
//
//   node examples/node/http-server.js > record.txt
//   node examples/node/http-client.js "$(cat record.txt)" /hello

const http = require('node:http');
const minimalt = require('../../js'); // in your project: require('minimalt')

const app = http.createServer((req, res) => {
  let bytes = 0;
  req.on('data', (chunk) => {
    bytes += chunk.length;
  });
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify({ method: req.method, url: req.url, bytes, via: 'minimalt' })}\n`);
  });
});

// Each minimalt connection is handed to the HTTP server as if it had accepted it.
const server = minimalt.createServer({ service: 'http' }, (socket) => app.emit('connection', socket));
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.record()}\n`));
server.on('error', (error) => {
  console.error(`http-server: ${error.code}: ${error.message}`);
  process.exit(1);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close());
