'use strict';
// Names through the directory: a Node server registers its record under its identity's name
// with a real directory process, and a Node client connects by name. The bridge child
// inherits the directory's configuration from the environment.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { minimalt, waitFor, waitForClose, collect, close, shutdownAndCheck } = require('./helpers/net');

const python = process.env.MINIMALT_PYTHON || minimalt.findPython();
let dir;
let directory;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlt-names-'));
  execFileSync(python, ['-m', 'minimalt', 'keygen', '-o', path.join(dir, 'alpha.json'), '-n', 'alpha'], {
    stdio: 'ignore',
  });
  directory = spawn(python, ['-m', 'minimalt', 'directory', '--store', ':memory:', '-q'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: directory.stdout });
  const env = {};
  for await (const line of lines) {
    const [key, value] = line.split('=');
    env[key] = value;
    if (env.MINIMALT_DIRECTORY && env.MINIMALT_DIRECTORY_KEY) break;
  }
  // Set before this file's first socket starts the bridge child, which inherits them.
  Object.assign(process.env, env, { XDG_CONFIG_HOME: dir });
  delete process.env.MINIMALT_CONFIG;
});

afterAll(async () => {
  await shutdownAndCheck();
  if (directory && directory.exitCode === null) {
    const exited = waitFor(directory, 'exit');
    directory.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a server registered under its name is reached with connect({ name })', async () => {
  const server = minimalt.createServer(
    { service: 'echo', identity: path.join(dir, 'alpha.json'), register: true },
    (socket) => socket.pipe(socket),
  );
  server.listen(0);
  await waitFor(server, 'listening', 20000);
  try {
    const socket = minimalt.connect({ name: 'alpha', service: 'echo' });
    const closed = waitForClose(socket);
    socket.end('by name');
    expect((await collect(socket)).toString()).toBe('by name');
    await closed;
    expect(socket.remotePort).toBe(server.address().port);
  } finally {
    await close(server);
  }
});

test('a name the directory does not know is ENOTFOUND', async () => {
  const socket = minimalt.connect({ name: 'nobody', service: 'echo' });
  const closed = waitForClose(socket);
  const [error] = await waitFor(socket, 'error');
  await closed;
  expect(error.code).toBe('ENOTFOUND');
  expect(error.directoryCode).toBe('not_found');
  expect(error.message).toMatch(/nobody/);
});
