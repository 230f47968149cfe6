#!/usr/bin/env node
'use strict';
// Node's own http client over minimalt: http.request with createConnection, and a
// keep-alive Agent that reuses one minimalt connection for several requests.
//
//   node examples/node/http-client.js RECORD [path]

const http = require('node:http');
const minimalt = require('../../js'); // in your project: require('minimalt')

const [record, path = '/'] = process.argv.slice(2);
if (!record) {
  console.error('usage: http-client.js RECORD [path]');
  process.exit(2);
}

/** An http.Agent whose connections are minimalt connections to the 'http' service. */
class MinimaltAgent extends http.Agent {
  createConnection() {
    return minimalt.connect({ record, service: 'http' });
  }
}

function get(options) {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function main() {
  // One request on its own connection.
  const one = await get({ path, createConnection: () => minimalt.connect({ record, service: 'http' }) });
  process.stdout.write(`${one.status} ${one.body}`);
  // Three more on one kept-alive connection.
  const agent = new MinimaltAgent({ keepAlive: true, maxSockets: 1 });
  for (let i = 1; i <= 3; i++) {
    const reply = await get({ path: `${path}?n=${i}`, agent });
    process.stdout.write(`${reply.status} ${reply.body}`);
  }
  agent.destroy();
}

main().catch((error) => {
  console.error(`http-client: ${error.code ?? ''} ${error.message}`);
  process.exitCode = 1;
});
