#!/usr/bin/env node
'use strict';
/**
 * How fast is the simulator? Simulates 60 s of one bulk flow on the interop preset
 * (10 Mbit/s, 15 ms, 25-packet queue) per controller and prints the wall time.
 *
 *   node js/lab/bench.js [controller ...]
 *
 * "cold" is the first run in a fresh process (what a CLI user waits for, JIT warm-up
 * included); "warm" is the best of three more. Each is measured with the full qlog trace
 * (every packet, as the CLI writes it by default) and without any trace. The target is
 * under 2 s of wall time for the cold run with the full trace.
 */

const { execFileSync } = require('node:child_process');
const { normalizeScenario } = require('./run/scenario');
const { runExperiment } = require('./run/experiment');
const { listControllers } = require('./cc');

const SIMULATED_MS = 60000;

function scenarioFor(controller) {
  return normalizeScenario({
    name: 'bench',
    durationMs: SIMULATED_MS,
    link: { preset: 'interop' },
    flows: [{ controller }],
  });
}

/** @returns {{ms: number, events: number, traceBytes: number}} one run's wall time */
function timeRun(controller, trace) {
  const scenario = scenarioFor(controller);
  const started = process.hrtime.bigint();
  const result = runExperiment(scenario, scenario.runs[0], { trace });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms, events: result.eventsRun, traceBytes: result.trace ? result.trace.length : 0 };
}

/** Run one measurement in a fresh Node process, so that "cold" really is cold. */
function coldRun(controller, trace) {
  const out = execFileSync(process.execPath, [__filename, '--child', controller, trace ? 'trace' : 'none'], {
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

function main(args) {
  if (args[0] === '--child') {
    process.stdout.write(JSON.stringify(timeRun(args[1], args[2] === 'trace')));
    return;
  }
  const controllers = args.length > 0 ? args : listControllers();
  console.log(`60 s simulated, one flow, interop preset (10 Mbit/s, 15 ms, 25-packet queue); node ${process.version}`);
  console.log('controller  trace  cold ms  warm ms  events   trace MB  x real time (cold)');
  let worst = 0;
  for (const controller of controllers) {
    for (const trace of [true, false]) {
      const cold = coldRun(controller, trace);
      const warm = Math.min(...[0, 1, 2].map(() => timeRun(controller, trace).ms));
      if (trace) worst = Math.max(worst, cold.ms);
      console.log(
        [
          controller.padEnd(10),
          (trace ? 'full' : 'none').padEnd(5),
          cold.ms.toFixed(0).padStart(7),
          warm.toFixed(0).padStart(7),
          String(cold.events).padStart(7),
          (cold.traceBytes / 1e6).toFixed(1).padStart(9),
          `${(SIMULATED_MS / cold.ms).toFixed(0)}x`.padStart(10),
        ].join('  '),
      );
    }
  }
  console.log(`slowest cold run with the full trace: ${(worst / 1000).toFixed(2)} s (target: under 2 s)`);
}

main(process.argv.slice(2));
