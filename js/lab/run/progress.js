'use strict';
/**
 * Progress reports for long runs: "[2/4 cubic] 12 s / 60 s simulated". On a terminal the
 * line is rewritten in place and cleared when done; elsewhere (a log file, a CI console) a
 * plain line is written at every tenth of each run.
 */

/**
 * @param {import('node:stream').Writable & {isTTY?: boolean}} stream usually process.stderr
 * @returns {{update: (p: {run: string, runIndex: number, runs: number, simMs: number,
 *   durationMs: number}) => void, done: () => void}}
 */
function createProgressLine(stream) {
  const inPlace = Boolean(stream.isTTY);
  let shown = false;
  let lastTenth = -1;
  let lastRun = -1;
  return {
    update({ run, runIndex, runs, simMs, durationMs }) {
      const line = `[${runIndex + 1}/${runs} ${run}] ${Math.round(simMs / 1000)} s / ${Math.round(durationMs / 1000)} s simulated`;
      if (inPlace) {
        stream.write(`\r${line}\x1b[K`);
        shown = true;
        return;
      }
      const tenth = Math.floor((10 * simMs) / durationMs);
      if (runIndex !== lastRun || tenth !== lastTenth) stream.write(`${line}\n`);
      lastRun = runIndex;
      lastTenth = tenth;
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}

module.exports = { createProgressLine };
