'use strict';
// The Node examples (examples/node) run as a user runs them: a server prints its record, a
// client uses it; pipe-file copies a file through a connection.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const EXAMPLES = path.join(__dirname, '..', '..', 'examples', 'node');
const running = new Set();

afterEach(async () => {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
  running.clear();
});

function start(script, args = [], input) {
  const child = spawn(process.execPath, [path.join(EXAMPLES, script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  if (input === undefined) child.stdin.end();
  else child.stdin.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise((resolve) => {
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

/** A server example's record: the first line of its stdout. */
function recordOf(child, ms = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server printed no record')), ms);
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
  });
}

function finished(run, ms = 20000) {
  return Promise.race([
    run.done,
    new Promise((_, reject) => setTimeout(() => reject(new Error('example did not finish')), ms).unref()),
  ]);
}

test('echo-client gets its words back from echo-server', async () => {
  const server = start('echo-server.js');
  const record = await recordOf(server.child);
  expect(record).toMatch(/^mlt1:/);
  const client = await finished(start('echo-client.js', [record, 'hello', 'minimalt']));
  expect(client).toMatchObject({ code: 0, stdout: 'hello minimalt\n' });
  const piped = await finished(start('echo-client.js', [record], 'from stdin\n'));
  expect(piped.stdout).toBe('from stdin\n');
  server.child.kill('SIGTERM');
  const { code, stderr } = await finished(server);
  expect(code).toBe(0);
  expect(stderr).toMatch(/echo server closed/);
});

test('http-client talks to http-server with Node\'s own http over minimalt', async () => {
  const server = start('http-server.js');
  const record = await recordOf(server.child);
  const client = await finished(start('http-client.js', [record, '/hello']));
  expect(client.code).toBe(0);
  const lines = client.stdout.trim().split('\n');
  expect(lines).toHaveLength(4);
  expect(lines[0]).toBe('200 {"method":"GET","url":"/hello","bytes":0,"via":"minimalt"}');
  expect(lines[3]).toContain('"url":"/hello?n=3"');
});

test('pipe-file copies a file through a connection, identical', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlt-pipe-'));
  try {
    const file = path.join(dir, 'in.bin');
    const copy = path.join(dir, 'out.bin');
    fs.writeFileSync(file, crypto.randomBytes(3 << 20));
    const run = await finished(start('pipe-file.js', [file, copy]));
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/identical/);
    expect(fs.readFileSync(copy).equals(fs.readFileSync(file))).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
