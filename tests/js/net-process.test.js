'use strict';
// Process lifetimes: a killed Node process leaves no Python behind, a killed bridge child
// fails every open socket ('error' then 'close'), a process exits naturally when its sockets
// are closed, a missing Python side is a clear EMLTNOPYTHON, and stray output of the child
// cannot corrupt the frame pipe.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const {
  minimalt,
  waitFor,
  waitForClose,
  listen,
  waitForPidExit,
  isRunning,
  commandLine,
  shutdownAndCheck,
} = require('./helpers/net');

afterAll(shutdownAndCheck);

const FIXTURES = path.join(__dirname, 'fixtures');
const children = new Set();

afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

/** Run a fixture script under Node; resolves with its first stdout line parsed as JSON. */
function runFixture(name, env = {}) {
  const child = spawn(process.execPath, [path.join(FIXTURES, name)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const firstLine = new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout });
    lines.once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', () => reject(new Error(`fixture ${name} exited without output; stderr: ${stderr}`)));
  });
  return { child, firstLine, exited, stderr: () => stderr };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test('SIGKILL of the Node process leaves no Python process: the bridge child exits within seconds', async () => {
  const run = runFixture('hold.js');
  const { bridgePid } = await withTimeout(run.firstLine, 15000, 'no report from the fixture');
  expect(isRunning(bridgePid)).toBe(true);
  expect(commandLine(bridgePid)).toContain('minimalt.uvbridge');
  run.child.kill('SIGKILL');
  await run.exited;
  await waitForPidExit(bridgePid, 5000);
});

test('a Node process whose sockets and servers are closed exits by itself, and so does its bridge', async () => {
  const run = runFixture('echo-once.js');
  const report = await withTimeout(run.firstLine, 15000, 'no report from the fixture');
  expect(report.echoed).toBe('ping');
  const { code } = await withTimeout(run.exited, 10000, 'the Node process did not exit');
  expect(code).toBe(0);
  await waitForPidExit(report.bridgePid, 5000);
});

test('killing the bridge child gives every open socket an EMLTBRIDGE error then close, and the server too', async () => {
  const serverSides = [];
  const server = await listen('echo', (socket) => {
    serverSides.push(socket);
    socket.pipe(socket);
  });
  const clients = [];
  for (let i = 0; i < 3; i++) {
    const socket = minimalt.connect({ record: server.record(), service: 'echo' });
    socket.write('hi');
    clients.push(socket);
  }
  await Promise.all(clients.map((socket) => waitFor(socket, 'data')));
  expect(serverSides).toHaveLength(3);
  const sockets = [...clients, ...serverSides];
  const outcomes = sockets.map(async (socket) => {
    const order = [];
    socket.on('error', (error) => order.push(`error:${error.code}`));
    const [hadError] = await waitForClose(socket);
    order.push(`close:${hadError}`);
    return order;
  });
  const serverOrder = [];
  server.on('error', (error) => serverOrder.push(`error:${error.code}`));
  const serverClosed = waitForClose(server).then(() => serverOrder.push('close'));
  const { pid } = minimalt.bridgeInfo();
  process.kill(pid, 'SIGKILL');
  for (const order of await Promise.all(outcomes)) expect(order).toEqual(['error:EMLTBRIDGE', 'close:true']);
  await serverClosed;
  expect(serverOrder).toEqual(['error:EMLTBRIDGE', 'close']);
  await waitForPidExit(pid);
  // The next socket starts a new bridge.
  const again = await listen('echo', (socket) => socket.pipe(socket));
  expect(minimalt.bridgeInfo().pid).not.toBe(pid);
  const closed = waitForClose(again);
  again.close();
  await closed;
});

test('a Python that cannot be found is EMLTNOPYTHON, saying how to install the Python side', async () => {
  const run = runFixture('echo-once.js', { MINIMALT_PYTHON: '/nonexistent/python3' });
  const { error } = await withTimeout(run.firstLine, 15000, 'no report from the fixture');
  expect(error.code).toBe('EMLTNOPYTHON');
  expect(error.message).toMatch(/not found/);
  expect(error.message).toMatch(/pip install/);
  expect(error.message).toMatch(/MINIMALT_PYTHON/);
  expect((await run.exited).code).toBe(0);
});

test('a Python without the minimalt package is EMLTNOPYTHON naming the missing module', async () => {
  // The venv's base interpreter, isolated from every site-packages: minimalt cannot be there.
  const venvPython = process.env.MINIMALT_PYTHON || minimalt.findPython();
  const base = execFileSync(venvPython, ['-c', 'import sys; print(sys._base_executable)']).toString().trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlt-nopkg-'));
  try {
    const wrapper = path.join(dir, 'python');
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec "${base}" -I -S "$@"\n`, { mode: 0o755 });
    const run = runFixture('echo-once.js', { MINIMALT_PYTHON: wrapper });
    const { error } = await withTimeout(run.firstLine, 15000, 'no report from the fixture');
    expect(error.code).toBe('EMLTNOPYTHON');
    expect(error.message).toMatch(/No module named 'minimalt'/);
    expect(error.message).toMatch(/pip install/);
    expect((await run.exited).code).toBe(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('output the Python side prints cannot corrupt the frame pipe, nor reach Node\'s stdout', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlt-noisy-'));
  try {
    // Runs at interpreter start-up in the child, and again on every frame the host decodes.
    fs.writeFileSync(
      path.join(dir, 'sitecustomize.py'),
      [
        'import sys',
        'print("stray output " * 100)',
        'import minimalt.uvbridge.codec as codec',
        '_feed = codec.FrameDecoder.feed',
        'def feed(self, data):',
        '    print("noise while decoding", len(data))',
        '    sys.stdout.flush()',
        '    return _feed(self, data)',
        'codec.FrameDecoder.feed = feed',
        '',
      ].join('\n'),
    );
    const run = runFixture('echo-once.js', { PYTHONPATH: dir });
    const report = await withTimeout(run.firstLine, 15000, 'no report from the fixture');
    expect(report.echoed).toBe('ping');
    await run.exited;
    expect(run.stderr()).toContain('noise while decoding'); // it went to the logs
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
