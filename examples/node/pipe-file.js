#!/usr/bin/env node
'use strict';
// Pipes a file through a minimalt connection with stream.pipeline (backpressure end to end)
// to a server that writes it to a copy, then compares the two sha256 digests.
//
//   node examples/node/pipe-file.js FILE [COPY]

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pipeline } = require('node:stream/promises');
const minimalt = require('../../js'); // in your project: require('minimalt')

async function sha256(file) {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

async function main() {
  const [file, copy = path.join(os.tmpdir(), `minimalt-copy-${process.pid}`)] = process.argv.slice(2);
  if (!file) throw Object.assign(new Error('usage: pipe-file.js FILE [COPY]'), { code: 'USAGE' });

  // The receiving side: each connection is written to COPY; 'stored' when it is complete.
  const stored = new Promise((resolve, reject) => {
    const server = minimalt.createServer({ service: 'store' }, (socket) => {
      pipeline(socket, fs.createWriteStream(copy))
        .then(() => server.close(resolve))
        .catch(reject);
    });
    server.listen(0, () => sending(server.record()).catch(reject));
  });

  // The sending side: the file, through the connection.
  let started;
  async function sending(record) {
    started = process.hrtime.bigint();
    const socket = minimalt.connect({ record, service: 'store' });
    socket.resume(); // the server sends nothing back; read its end so the socket can close
    await pipeline(fs.createReadStream(file), socket);
  }

  await stored;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const size = fs.statSync(file).size;
  const [sent, received] = await Promise.all([sha256(file), sha256(copy)]);
  console.log(`${size} bytes in ${seconds.toFixed(2)} s (${(size / seconds / 1e6).toFixed(1)} MB/s)`);
  console.log(`sha256 sent     ${sent}`);
  console.log(`sha256 received ${received}`);
  console.log(sent === received ? 'identical' : 'DIFFERENT');
  if (sent !== received) process.exitCode = 1;
}

main().catch((error) => {
  console.error(`pipe-file: ${error.code ?? ''} ${error.message}`);
  process.exitCode = 1;
});
