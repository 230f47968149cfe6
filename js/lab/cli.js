#!/usr/bin/env node
'use strict';
/**
 * minimalt-lab: run congestion-control experiments from the command line.
 *
 *   minimalt-lab run <scenario.json> [--out DIR] [--seed N] [--duration MS]
 *                    [--no-trace] [--no-plots] [--progress | --no-progress]
 *                    [--require FILE]...
 *   minimalt-lab udp [--bytes N] [--controller NAME]
 *   minimalt-lab minimalt [--bytes N] [--controller NAME] [--delay 20ms --loss 1% ...]
 *   minimalt-lab list
 */

const path = require('node:path');
const { parseArgs } = require('node:util');
const lab = require('./index');
const { createProgressLine } = require('./run/progress');

const USAGE = `usage:
  minimalt-lab run <scenario.json> [options]   simulate a scenario
      --out DIR        where to write summary.json, traces and plots
                       (default: lab-out/<scenario name>)
      --seed N         override the scenario's seed
      --duration MS    override the scenario's duration
      --no-trace       do not write qlog traces
      --no-plots       do not draw SVG plots
      --progress       show progress on stderr even when it is not a terminal
      --no-progress    never show progress
      --require FILE   load a module first (e.g. one that registers a controller)
  minimalt-lab udp [--bytes N] [--controller NAME]   a real transfer over loopback UDP
  minimalt-lab minimalt [--bytes N] [--controller NAME] [link options]
                   a real transfer over a minimalt tunnel's datagrams (Python bridge);
                   any link option puts the link emulator (python -m
                   minimalt.testing.link) in the path: --delay 20ms (one way),
                   --jitter, --loss 1%, --burst, --gilbert, --reorder, --reorder-gap,
                   --duplicate, --corrupt, --rate 10mbit, --queue 64k, --blackhole 5s/2s,
                   --seed (each as the emulator's flag; X both ways, UP:DOWN)
  minimalt-lab list                                  controllers and link presets`;

class UsageError extends Error {}

async function main(argv) {
  const [command, ...rest] = argv;
  if (command === 'run') return run(rest);
  if (command === 'udp') return udp(rest);
  if (command === 'minimalt') return minimaltTunnel(rest);
  if (command === 'list') return list();
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  throw new UsageError(`unknown command "${command}"`);
}

async function run(args) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    allowNegative: true,
    options: {
      out: { type: 'string' },
      seed: { type: 'string' },
      duration: { type: 'string' },
      trace: { type: 'boolean', default: true },
      plots: { type: 'boolean', default: true },
      progress: { type: 'boolean' },
      require: { type: 'string', multiple: true, default: [] },
    },
  });
  if (positionals.length !== 1) throw new UsageError('run takes exactly one scenario file');
  for (const file of values.require) require(path.resolve(file));
  const scenario = lab.loadScenario(positionals[0]);
  const name = typeof scenario.name === 'string' ? scenario.name : path.basename(positionals[0], '.json');
  const outDir = values.out ?? path.join('lab-out', name);
  const showProgress = values.progress ?? Boolean(process.stderr.isTTY);
  const progress = showProgress ? createProgressLine(process.stderr) : null;
  const started = process.hrtime.bigint();
  const result = await lab.runScenario(scenario, {
    outDir,
    trace: values.trace,
    plots: values.plots,
    seed: values.seed === undefined ? undefined : parseNumberOrText(values.seed),
    durationMs: values.duration === undefined ? undefined : positiveNumber(values.duration, '--duration'),
    onProgress: progress ? progress.update : undefined,
  });
  if (progress) progress.done();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(formatSummary(result.summary));
  process.stdout.write(`\n${result.files.length} files in ${outDir} (${seconds.toFixed(1)} s)\n`);
  return 0;
}

async function udp(args) {
  const { values } = parseArgs({
    args,
    options: {
      bytes: { type: 'string', default: '1000000' },
      controller: { type: 'string', default: 'cubic' },
    },
  });
  const bytes = positiveNumber(values.bytes, '--bytes');
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 131 + (i >>> 11)) & 0xff;
  const result = await lab.runUdpTransfer({ data, controller: values.controller, timeoutMs: 60000 });
  const ok = result.received.equals(data);
  const mbps = (bytes * 8) / (result.elapsedMs * 1000);
  process.stdout.write(
    `${values.controller}: ${bytes} bytes over loopback UDP in ${result.elapsedMs.toFixed(1)} ms ` +
      `(${mbps.toFixed(1)} Mbit/s), ${result.sender.packetsLost} packets lost, ` +
      `${ok ? 'byte-identical' : 'CORRUPTED'}\n`,
  );
  return ok ? 0 : 1;
}

/** `minimalt` command options that go to the link emulator, and their `link` keys. */
const LINK_OPTIONS = {
  delay: 'delay',
  jitter: 'jitter',
  loss: 'loss',
  burst: 'burst',
  gilbert: 'gilbert',
  reorder: 'reorder',
  'reorder-gap': 'reorderGap',
  duplicate: 'duplicate',
  corrupt: 'corrupt',
  rate: 'rate',
  queue: 'queue',
  blackhole: 'blackhole',
  seed: 'seed',
};

async function minimaltTunnel(args) {
  const options = {
    bytes: { type: 'string', default: '1000000' },
    controller: { type: 'string', default: 'cubic' },
    timeout: { type: 'string', default: '60000' },
  };
  for (const flag of Object.keys(LINK_OPTIONS)) options[flag] = { type: 'string' };
  const { values } = parseArgs({ args, options });
  const bytes = positiveNumber(values.bytes, '--bytes');
  const link = {};
  for (const [flag, key] of Object.entries(LINK_OPTIONS)) {
    if (values[flag] !== undefined) link[key] = values[flag];
  }
  const throughLink = Object.keys(link).length > 0;
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 131 + (i >>> 11)) & 0xff;
  // The bridge child is left to end with this process (it exits when the pipe closes).
  const result = await lab.runMinimaltTransfer({
    data,
    controller: values.controller,
    link: throughLink ? link : null,
    timeoutMs: positiveNumber(values.timeout, '--timeout'),
  });
  const ok = result.received.equals(data);
  const mbps = (bytes * 8) / (result.elapsedMs * 1000);
  const { rttMs } = result.sender;
  const path = throughLink
    ? `through the link emulator (${Object.entries(link).map(([k, v]) => `${k} ${v}`).join(', ')})`
    : 'on loopback';
  process.stdout.write(
    `${values.controller}: ${bytes} bytes over a minimalt tunnel ${path} in ${result.elapsedMs.toFixed(1)} ms ` +
      `(${mbps.toFixed(1)} Mbit/s), ${result.sender.packetsLost} packets lost, ` +
      `rtt min ${rttMs.min.toFixed(1)} ms smoothed ${rttMs.smoothed.toFixed(1)} ms, ` +
      `${ok ? 'byte-identical' : 'CORRUPTED'}\n`,
  );
  return ok ? 0 : 1;
}

function list() {
  process.stdout.write(`controllers: ${lab.listControllers().join(', ')}\n`);
  process.stdout.write(`link presets:\n`);
  for (const [name, preset] of Object.entries(lab.PRESETS)) {
    process.stdout.write(`  ${name.padEnd(12)} ${JSON.stringify(preset)}\n`);
  }
  return 0;
}

function formatSummary(summary) {
  const lines = [];
  const header = ['run', 'flow', 'controller', 'goodput Mbit/s', 'util', 'owd p95 ms', 'rtt p50 ms', 'lost', 'jain'];
  const rows = [];
  for (const run of summary.runs) {
    run.flows.forEach((flow, i) => {
      rows.push([
        run.run,
        String(flow.id),
        flow.controller,
        fmt(flow.goodputMbps, 2),
        i === 0 ? fmt(run.link.utilisation, 3) : '',
        fmt(flow.owdMs.p95, 1),
        fmt(flow.rttMs.p50, 1),
        String(flow.packetsLost),
        i === 0 ? fmt(run.aggregate.jainIndex, 3) : '',
      ]);
    });
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells) => cells.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd();
  lines.push(line(header));
  for (const row of rows) lines.push(line(row));
  return `${lines.join('\n')}\n`;
}

function fmt(x, digits) {
  return x === null || x === undefined ? '-' : x.toFixed(digits);
}

function positiveNumber(text, flag) {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got "${text}"`);
  return n;
}

function parseNumberOrText(text) {
  return /^-?\d+$/.test(text) ? Number(text) : text;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      if (error instanceof UsageError || (error && error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')) {
        process.stderr.write(`minimalt-lab: ${error.message}\n${USAGE}\n`);
        process.exitCode = 2;
      } else if (error && ['ERR_LAB_SCENARIO', 'ENOENT', 'ERR_LAB_LINK', 'ERR_LAB_TIMEOUT', 'ERR_INVALID_ARG_VALUE', 'EMLTNOPYTHON'].includes(error.code)) {
        process.stderr.write(`minimalt-lab: ${error.message}\n`);
        process.exitCode = 1;
      } else {
        process.stderr.write(`minimalt-lab: ${error && error.stack ? error.stack : error}\n`);
        process.exitCode = 1;
      }
    },
  );
}

module.exports = { main };
