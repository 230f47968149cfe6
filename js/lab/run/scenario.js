'use strict';
/**
 * Scenario files: validation, defaults, presets and expansion into runs.
 *
 * A scenario (JSON) describes one experiment:
 *
 *   {
 *     "name": "compare-controllers",
 *     "seed": 1,
 *     "durationMs": 30000,
 *     "link": { "preset": "interop", "loss": 0.01 },
 *     "flows": [ { "controller": "cubic", "count": 2, "startMs": 0, "stopMs": null,
 *                  "bytes": null, "extraDelayMs": 0 } ],
 *     "controllers": ["newreno", "cubic"],
 *     "measure": { "fromMs": 5000, "toMs": 30000 },
 *     "sampleMs": 100,
 *     "trace": { "packets": true }
 *   }
 *
 * With "controllers", the scenario runs once per controller, every flow using it (a
 * Pantheon-style comparison); without, once, each flow with its own "controller".
 * "bytes": null means a bulk flow that sends until the run (or stopMs) ends.
 */

const { PRESETS } = require('./presets');
const { listControllers } = require('../cc');

class ScenarioError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ScenarioError';
    this.code = 'ERR_LAB_SCENARIO';
  }
}

function fail(path, message) {
  throw new ScenarioError(`scenario${path}: ${message}`);
}

function number(value, path, { min = -Infinity, integer = false, fallback } = {}) {
  if (value === undefined || value === null) {
    if (fallback === undefined) fail(path, 'is required');
    return fallback;
  }
  if (typeof value !== 'number' || Number.isNaN(value)) fail(path, `must be a number, got ${JSON.stringify(value)}`);
  if (value < min) fail(path, `must be at least ${min}, got ${value}`);
  if (integer && !Number.isInteger(value)) fail(path, `must be an integer, got ${value}`);
  return value;
}

function object(value, path) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) fail(path, 'must be an object');
  return value;
}

function controllerName(value, path) {
  if (typeof value !== 'string') fail(path, 'must name a congestion controller');
  if (!listControllers().includes(value)) {
    fail(path, `unknown controller "${value}" (known: ${listControllers().join(', ')})`);
  }
  return value;
}

function normalizeQueue(queue, path) {
  const q = object(queue, path);
  const type = q.type ?? 'droptail';
  if (type !== 'droptail' && type !== 'codel') fail(`${path}.type`, `must be "droptail" or "codel"`);
  const out = { type };
  if (q.packets !== undefined) out.packets = number(q.packets, `${path}.packets`, { min: 1, integer: true });
  if (q.bytes !== undefined) out.bytes = number(q.bytes, `${path}.bytes`, { min: 1 });
  if (type === 'codel') {
    out.targetMs = number(q.targetMs, `${path}.targetMs`, { min: 0, fallback: 5 });
    out.intervalMs = number(q.intervalMs, `${path}.intervalMs`, { min: 0, fallback: 100 });
  }
  return out;
}

function normalizeLoss(loss, path) {
  if (loss === undefined || loss === null) return 0;
  if (typeof loss === 'number') return number(loss, path, { min: 0 });
  const l = object(loss, path);
  if (l.type === 'random') return { type: 'random', rate: number(l.rate, `${path}.rate`, { min: 0 }) };
  if (l.type === 'gilbert-elliott') {
    return {
      type: 'gilbert-elliott',
      p: number(l.p, `${path}.p`, { min: 0 }),
      r: number(l.r, `${path}.r`, { min: 0 }),
      lossGood: number(l.lossGood, `${path}.lossGood`, { min: 0, fallback: 0 }),
      lossBad: number(l.lossBad, `${path}.lossBad`, { min: 0, fallback: 1 }),
    };
  }
  return fail(`${path}.type`, 'must be "random" or "gilbert-elliott"');
}

function normalizeLink(link, path) {
  const given = object(link, path);
  let base = {};
  if (given.preset !== undefined) {
    base = PRESETS[given.preset];
    if (!base) fail(`${path}.preset`, `unknown preset "${given.preset}" (known: ${Object.keys(PRESETS).join(', ')})`);
  }
  const merged = { ...structuredClone(base), ...given };
  const out = {
    bandwidthMbps: number(merged.bandwidthMbps, `${path}.bandwidthMbps`, { min: Number.MIN_VALUE }),
    delayMs: number(merged.delayMs, `${path}.delayMs`, { min: 0 }),
    queue: normalizeQueue(merged.queue, `${path}.queue`),
    loss: normalizeLoss(merged.loss, `${path}.loss`),
    overheadBytes: number(merged.overheadBytes, `${path}.overheadBytes`, { min: 0, fallback: 28 }),
  };
  if (merged.preset !== undefined) out.preset = merged.preset;
  if (merged.reorder !== undefined && merged.reorder !== null) {
    const r = object(merged.reorder, `${path}.reorder`);
    out.reorder = {
      probability: number(r.probability, `${path}.reorder.probability`, { min: 0 }),
      delayMs: number(r.delayMs, `${path}.reorder.delayMs`, { min: 0 }),
    };
  }
  if (merged.reverse !== undefined) {
    const r = object(merged.reverse, `${path}.reverse`);
    out.reverse = {};
    if (r.bandwidthMbps !== undefined) out.reverse.bandwidthMbps = number(r.bandwidthMbps, `${path}.reverse.bandwidthMbps`, { min: Number.MIN_VALUE });
    if (r.delayMs !== undefined) out.reverse.delayMs = number(r.delayMs, `${path}.reverse.delayMs`, { min: 0 });
    if (r.loss !== undefined) out.reverse.loss = normalizeLoss(r.loss, `${path}.reverse.loss`);
    if (r.queue !== undefined) out.reverse.queue = normalizeQueue(r.queue, `${path}.reverse.queue`);
  }
  if (merged.variableBandwidth !== undefined && merged.variableBandwidth !== null) {
    const v = object(merged.variableBandwidth, `${path}.variableBandwidth`);
    const p = `${path}.variableBandwidth`;
    out.variableBandwidth = {
      intervalMs: number(v.intervalMs, `${p}.intervalMs`, { min: 1 }),
      minMbps: number(v.minMbps, `${p}.minMbps`, { min: Number.MIN_VALUE }),
      maxMbps: number(v.maxMbps, `${p}.maxMbps`, { min: Number.MIN_VALUE }),
      stepMbps: number(v.stepMbps, `${p}.stepMbps`, { min: 0 }),
    };
  }
  const schedule = merged.schedule ?? [];
  if (!Array.isArray(schedule)) fail(`${path}.schedule`, 'must be a list');
  out.schedule = schedule.map((entry, i) => normalizeChange(entry, `${path}.schedule[${i}]`));
  return out;
}

function normalizeChange(entry, path) {
  const e = object(entry, path);
  const out = { atMs: number(e.atMs, `${path}.atMs`, { min: 0 }) };
  const known = ['atMs', 'bandwidthMbps', 'delayMs', 'loss', 'blackhole', 'blackholeMs'];
  for (const key of Object.keys(e)) {
    if (!known.includes(key)) fail(`${path}.${key}`, `unknown field (known: ${known.join(', ')})`);
  }
  if (e.bandwidthMbps !== undefined) out.bandwidthMbps = number(e.bandwidthMbps, `${path}.bandwidthMbps`, { min: Number.MIN_VALUE });
  if (e.delayMs !== undefined) out.delayMs = number(e.delayMs, `${path}.delayMs`, { min: 0 });
  if (e.loss !== undefined) out.loss = normalizeLoss(e.loss, `${path}.loss`);
  if (e.blackhole !== undefined) {
    if (typeof e.blackhole !== 'boolean') fail(`${path}.blackhole`, 'must be true or false');
    out.blackhole = e.blackhole;
  }
  if (e.blackholeMs !== undefined) out.blackholeMs = number(e.blackholeMs, `${path}.blackholeMs`, { min: 0 });
  return out;
}

function normalizeFlows(flows, durationMs, substitute) {
  if (!Array.isArray(flows) || flows.length === 0) fail('.flows', 'must be a non-empty list');
  const out = [];
  flows.forEach((flow, i) => {
    const path = `.flows[${i}]`;
    const f = object(flow, path);
    const controller = substitute ?? controllerName(f.controller, `${path}.controller`);
    const count = number(f.count, `${path}.count`, { min: 1, integer: true, fallback: 1 });
    const startMs = number(f.startMs, `${path}.startMs`, { min: 0, fallback: 0 });
    const stopMs = number(f.stopMs, `${path}.stopMs`, { min: startMs, fallback: durationMs });
    const bytes = f.bytes === null || f.bytes === undefined ? null : number(f.bytes, `${path}.bytes`, { min: 1, integer: true });
    const extraDelayMs = number(f.extraDelayMs, `${path}.extraDelayMs`, { min: 0, fallback: 0 });
    for (let k = 0; k < count; k++) {
      out.push({ id: out.length, controller, startMs, stopMs, bytes, extraDelayMs });
    }
  });
  return out;
}

/**
 * Validate a scenario and fill in every default.
 * @param {object} scenario as parsed from JSON
 * @param {object} [overrides] `{ seed, durationMs }` from the command line
 * @returns {object} the normalised scenario, with `runs: [{ name, flows }]`
 * @throws {ScenarioError} with a message naming the offending field
 */
function normalizeScenario(scenario, overrides = {}) {
  const s = object(scenario, '');
  const durationMs = number(overrides.durationMs ?? s.durationMs, '.durationMs', { min: 1 });
  const seed = overrides.seed ?? s.seed ?? 1;
  if (typeof seed !== 'number' && typeof seed !== 'string') fail('.seed', 'must be a number or a string');
  const measure = object(s.measure, '.measure');
  const fromMs = number(measure.fromMs, '.measure.fromMs', { min: 0, fallback: 0 });
  const toMs = number(measure.toMs, '.measure.toMs', { min: fromMs, fallback: durationMs });
  if (fromMs >= durationMs) fail('.measure.fromMs', `must be before durationMs (${durationMs})`);
  const trace = object(s.trace, '.trace');
  let runs;
  if (s.controllers !== undefined) {
    if (!Array.isArray(s.controllers) || s.controllers.length === 0) fail('.controllers', 'must be a non-empty list');
    runs = s.controllers.map((name, i) => {
      const controller = controllerName(name, `.controllers[${i}]`);
      return { name: controller, flows: normalizeFlows(s.flows, durationMs, controller) };
    });
  } else {
    runs = [{ name: s.name ?? 'run', flows: normalizeFlows(s.flows, durationMs, undefined) }];
  }
  return {
    name: typeof s.name === 'string' ? s.name : 'scenario',
    seed,
    durationMs,
    link: normalizeLink(s.link, '.link'),
    runs,
    measure: { fromMs, toMs: Math.min(toMs, durationMs) },
    sampleMs: number(s.sampleMs, '.sampleMs', { min: 1, fallback: 100 }),
    trace: { packets: trace.packets ?? true },
  };
}

module.exports = { normalizeScenario, ScenarioError };
