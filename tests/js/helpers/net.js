'use strict';
// Helpers for the Node module's tests: event waits with deadlines (no sleeps), servers,
// process inspection through /proc, and the leak check every test file ends with.

const fs = require('node:fs');
const { once } = require('node:events');
const minimalt = require('../../../js');

/**
 * The arguments of the next `event` on `emitter`; rejects after `ms` (or on 'error' unless
 * the awaited event is 'error').
 */
function waitFor(emitter, event, ms = 10000) {
  return once(emitter, event, { signal: AbortSignal.timeout(ms) }).catch((error) => {
    if (error.name === 'AbortError') throw new Error(`no '${event}' within ${ms} ms`);
    throw error;
  });
}

/** The next 'close' of `emitter` (its 'error' events do not reject this), within `ms`. */
function waitForClose(emitter, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'close' within ${ms} ms`)), ms);
    emitter.once('close', (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** A minimalt server listening on 127.0.0.1 for `service`. */
async function listen(service, onConnection, options = {}) {
  const server = minimalt.createServer({ service, ...options }, onConnection);
  server.listen(0);
  await waitFor(server, 'listening');
  return server;
}

/** Close a server and wait for its 'close'. */
async function close(server) {
  if (!server.listening) return;
  const closed = waitFor(server, 'close', 20000);
  server.close();
  await closed;
}

/** Everything a readable stream delivers until 'end'. */
async function collect(stream, ms = 20000) {
  const chunks = [];
  stream.on('data', (chunk) => chunks.push(chunk));
  await waitFor(stream, 'end', ms);
  return Buffer.concat(chunks);
}

/** Resolves when `pid` no longer runs (gone, or a zombie nobody reaped); rejects after ms. */
async function waitForPidExit(pid, ms = 5000) {
  const deadline = Date.now() + ms;
  while (isRunning(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still running after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20)); // polling /proc: there is no pid event
  }
}

function isRunning(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function commandLine(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Resident set size of `pid` now, and its peak (bytes), from /proc/<pid>/status. */
function rssOf(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => Number(status.match(new RegExp(`${name}:\\s+(\\d+)`))[1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Live (non-zombie) child processes of this process. */
function childPids() {
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Stop the bridge and check that no child process is left. For afterAll. */
async function shutdownAndCheck() {
  const info = minimalt.bridgeInfo();
  await minimalt.shutdown();
  if (info && info.pid) await waitForPidExit(info.pid);
  const left = childPids().filter((pid) => commandLine(pid).includes('minimalt.uvbridge'));
  if (left.length > 0) throw new Error(`bridge processes left running: ${left}`);
}

module.exports = {
  minimalt,
  waitFor,
  waitForClose,
  listen,
  close,
  collect,
  waitForPidExit,
  isRunning,
  commandLine,
  rssOf,
  childPids,
  shutdownAndCheck,
};
