'use strict';
/**
 * Run a scenario end to end: every run of it in the simulator, then the summary, the
 * plots and (optionally) the files: `summary.json`, one qlog trace per run
 * (`<run>.sqlog`) and the SVG plots.
 */

const fs = require('node:fs');
const path = require('node:path');
const { normalizeScenario, ScenarioError } = require('./scenario');
const { runExperiment } = require('./experiment');
const { renderPlots } = require('./plots');

/**
 * @param {object} scenario a scenario object (see run/scenario.js)
 * @param {object} [options]
 * @param {string} [options.outDir] write summary.json, traces and plots here
 * @param {boolean} [options.trace] build qlog traces (default: when outDir is given)
 * @param {boolean} [options.plots] render SVG plots (default: when outDir is given)
 * @param {number|string} [options.seed] override the scenario's seed
 * @param {number} [options.durationMs] override the scenario's duration
 * @param {(progress: {run: string, runIndex: number, runs: number, simMs: number,
 *   durationMs: number}) => void} [options.onProgress] called every simulated second
 * @returns {Promise<{scenario: object, summary: object, runs: object[],
 *   plots: Record<string, string>|null, files: string[]}>} runs carry `summary`, `series`
 *   and `trace` (a string, if traced)
 */
async function runScenario(scenario, options = {}) {
  const { outDir = null, seed, durationMs, onProgress } = options;
  const trace = options.trace ?? outDir !== null;
  const wantPlots = options.plots ?? outDir !== null;
  const config = normalizeScenario(scenario, { seed, durationMs });
  const runs = config.runs.map((run, runIndex) =>
    runExperiment(config, run, {
      trace,
      onProgress:
        onProgress &&
        ((p) => onProgress({ ...p, run: run.name, runIndex, runs: config.runs.length })),
    }),
  );
  const summary = {
    scenario: config.name,
    seed: config.seed,
    durationMs: config.durationMs,
    link: config.link,
    runs: runs.map((r) => r.summary),
  };
  const plots = wantPlots ? await renderPlots(runs) : null;
  const files = outDir === null ? [] : writeOutputs(outDir, summary, runs, plots);
  return { scenario: config, summary, runs, plots, files };
}

function writeOutputs(outDir, summary, runs, plots) {
  fs.mkdirSync(outDir, { recursive: true });
  const files = [];
  const write = (name, text) => {
    const file = path.join(outDir, name);
    fs.writeFileSync(file, text);
    files.push(file);
  };
  write('summary.json', JSON.stringify(summary, null, 2) + '\n');
  for (const run of runs) {
    if (run.trace !== null) write(`${safeName(run.name)}.sqlog`, run.trace);
  }
  for (const [name, svg] of Object.entries(plots || {})) write(name, svg);
  return files;
}

function safeName(name) {
  return String(name).replace(/[^A-Za-z0-9._-]+/g, '_');
}

/**
 * Read a scenario file.
 * @param {string} file path to a JSON scenario
 * @returns {object}
 * @throws {ScenarioError} if the file is not valid JSON
 */
function loadScenario(file) {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ScenarioError(`${file} is not valid JSON: ${error.message}`);
  }
}

module.exports = { runScenario, loadScenario };
