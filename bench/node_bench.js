'use strict';
/**
 * The Node half of bench/node_bench.py: bulk goodput through the bridge.
 *
 *   node bench/node_bench.js server            prints {"record": ...}, sinks connections
 *   node bench/node_bench.js client RECORD MIB  sends MIB MiB, prints {"bytes", "seconds"}
 *
 * The server answers each connection, once it has read it to the end, with the byte count;
 * the client's time runs from connect() to that answer, so every byte was delivered.
 */

const minimalt = require('../js');

const [role, record, mib] = process.argv.slice(2);

if (role === 'server') {
  const server = minimalt.createServer({ service: 'sink' }, (socket) => {
    let bytes = 0;
    socket.on('data', (chunk) => {
      bytes += chunk.length;
    });
    socket.on('end', () => socket.end(JSON.stringify({ bytes })));
    socket.on('error', () => {});
  });
  server.listen(0, () => process.stdout.write(`${JSON.stringify({ record: server.record() })}\n`));
  process.stdin.resume();
  process.stdin.on('end', () => server.close(() => process.exit(0)));
} else if (role === 'client') {
  const total = Number(mib) * 1024 * 1024;
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  const started = process.hrtime.bigint();
  const socket = minimalt.connect({ record, service: 'sink' });
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
  let reply = '';
  socket.on('data', (data) => {
    reply += data;
  });
  socket.on('end', () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    process.stdout.write(`${JSON.stringify({ bytes: JSON.parse(reply).bytes, seconds })}\n`);
  });
} else {
  process.stderr.write('usage: node bench/node_bench.js server | client RECORD MIB\n');
  process.exit(2);
}
