'use strict';
// await shutdown() resolves even when nothing else keeps the event loop alive (the bridge
// child used to be unref'd during the stop, so Node exited in the middle of the await).

const { spawnSync } = require('node:child_process');
const path = require('node:path');

test('code after await shutdown() runs when the bridge was idle', () => {
  const script = `
    const mlt = require(${JSON.stringify(path.join(__dirname, '..', '..', 'js'))});
    (async () => {
      const server = mlt.createServer({ service: 'echo' });
      server.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      await new Promise((resolve) => server.close(resolve));
      await mlt.shutdown();
      console.log('after shutdown');
    })();
  `;
  const result = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    timeout: 30000,
    env: process.env,
  });
  expect(result.status).toBe(0);
  expect(result.stdout).toContain('after shutdown');
}, 40000);
