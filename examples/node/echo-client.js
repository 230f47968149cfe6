#!/usr/bin/env node
'use strict';
// Sends its arguments (or stdin) to an echo server over minimalt and prints what comes back.
//
//   node examples/node/echo-client.js RECORD [words...]     RECORD: 'mlt1:...' or a file

const minimalt = require('../../js'); // in your project: require('minimalt')

const [record, ...words] = process.argv.slice(2);
if (!record) {
  console.error('usage: echo-client.js RECORD [words...]');
  process.exit(2);
}

// retrySafe: an echo is safe to execute twice, so the data may ride in the first packet.
const socket = minimalt.connect({ record, service: 'echo', retrySafe: true });
socket.on('error', (error) => {
  console.error(`echo-client: ${error.code}: ${error.message}`);
  process.exitCode = 1;
});
socket.pipe(process.stdout);
if (words.length > 0) socket.end(`${words.join(' ')}\n`);
else process.stdin.pipe(socket);
