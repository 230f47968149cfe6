'use strict';
/**
 * SVG plots of experiment results, drawn with Vega-Lite specs rendered headless by Vega
 * (no browser, no canvas: `new vega.View(..., { renderer: 'none' }).toSVG()`).
 *
 *   cwnd.svg             congestion window and bytes in flight over time
 *   rtt.svg              RTT (mean of the samples in each interval) over time
 *   throughput.svg       goodput over time (moving average) and the bottleneck capacity
 *   throughput-delay.svg goodput against 95th percentile one-way delay, Pantheon-style
 *
 * Layout: one panel when each run has one flow (flows named after their run) or when there
 * is one run; otherwise one panel per run, flows named within it.
 */

const vega = require('vega');
const vegaLite = require('vega-lite');

const WIDTH = 640;
/** Tableau 10, as Vega's default; capacity is drawn in grey. */
const PALETTE = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];
const CAPACITY = 'capacity';
/** Goodput is plotted as a moving average over this long, to smooth out recovery bursts. */
const THROUGHPUT_AVERAGE_MS = 500;
/** The throughput-delay plot labels its points only up to this many. */
const MAX_POINT_LABELS = 5;

/**
 * Render a Vega-Lite spec to an SVG string.
 * @param {object} spec
 * @returns {Promise<string>}
 */
async function renderSvg(spec) {
  const compiled = vegaLite.compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    background: 'white',
    config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: '#ddd' }, legend: { labelLimit: 260 } },
    ...spec,
  }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Whether plots need one panel per run (several runs, some with several flows). */
function faceted(results) {
  return results.length > 1 && results.some((run) => run.series.flows.length > 1);
}

/**
 * The legend label of a flow: its run's name when each run has one flow, else the flow's
 * number (and controller, unless the run is named after it).
 */
function flowLabel(results, run, flow, { withRun = !faceted(results) } = {}) {
  if (run.series.flows.length === 1 && results.length > 1) return run.name;
  if (results.length === 1 && run.series.flows.length === 1) return flow.controller;
  const name = flow.controller === run.name ? `flow ${flow.id}` : `flow ${flow.id} (${flow.controller})`;
  return withRun && results.length > 1 ? `${run.name}: ${name}` : name;
}

/** The same flow gets the same colour in every plot. */
function colorEncoding(results, { withCapacity = false, withRun } = {}) {
  const domain = [];
  for (const run of results) {
    for (const flow of run.series.flows) {
      const label = flowLabel(results, run, flow, { withRun });
      if (!domain.includes(label)) domain.push(label);
    }
  }
  const range = domain.map((_, i) => PALETTE[i % PALETTE.length]);
  if (withCapacity) {
    domain.push(CAPACITY);
    range.push('#888');
  }
  return { field: 'flow', type: 'nominal', title: 'flow', scale: { domain, range } };
}

/**
 * A line chart over time, as one panel or one panel per run.
 * @param {object[]} results
 * @param {object} chart title, rows (data values, each with run and flow), layer (mark and
 *   encoding), transform, height
 */
function timeChart(results, { title, values, layer, transform = [], height = 260 }) {
  const base = { data: { values }, transform };
  if (!faceted(results) && !(layer.perRunPanels && results.length > 1)) {
    return { title, width: WIDTH, height, ...base, mark: layer.mark, encoding: layer.encoding };
  }
  return {
    title,
    ...base,
    facet: { row: { field: 'run', type: 'nominal', title: null, sort: results.map((r) => r.name) } },
    spec: { width: WIDTH, height: Math.max(100, Math.round(height / 2)), mark: layer.mark, encoding: layer.encoding },
    resolve: { scale: { y: 'independent' } },
  };
}

const timeAxis = { field: 't', type: 'quantitative', title: 'time (s)' };

function cwndSpec(results) {
  const values = [];
  for (const run of results) {
    for (const flow of run.series.flows) {
      const label = flowLabel(results, run, flow);
      for (const p of flow.points) {
        values.push({ run: run.name, flow: label, metric: 'cwnd', t: p.t, kb: p.cwnd / 1000 });
        values.push({ run: run.name, flow: label, metric: 'bytes in flight', t: p.t, kb: p.inflight / 1000 });
      }
    }
  }
  return timeChart(results, {
    title: 'Congestion window and bytes in flight',
    values,
    height: 240,
    layer: {
      // Windows differ by orders of magnitude between controllers: always one panel per run.
      perRunPanels: true,
      mark: { type: 'line', strokeWidth: 1, interpolate: 'step-after' },
      encoding: {
        x: timeAxis,
        y: { field: 'kb', type: 'quantitative', title: 'kB' },
        color: colorEncoding(results),
        strokeDash: { field: 'metric', type: 'nominal', title: null, sort: ['cwnd', 'bytes in flight'] },
      },
    },
  });
}

function rttSpec(results) {
  const values = [];
  for (const run of results) {
    for (const flow of run.series.flows) {
      const label = flowLabel(results, run, flow);
      for (const p of flow.points) if (p.rtt !== null) values.push({ run: run.name, flow: label, t: p.t, rtt: p.rtt });
    }
  }
  return timeChart(results, {
    title: 'Round-trip time (mean of the samples in each interval)',
    values,
    layer: {
      mark: { type: 'line', strokeWidth: 1 },
      encoding: {
        x: timeAxis,
        y: { field: 'rtt', type: 'quantitative', title: 'RTT (ms)' },
        color: colorEncoding(results),
      },
    },
  });
}

function throughputSpec(results) {
  const samples = Math.max(1, Math.round(THROUGHPUT_AVERAGE_MS / results[0].series.sampleMs));
  const values = [];
  const capacityRuns = faceted(results) ? results : [results[0]];
  for (const run of capacityRuns) {
    for (const p of run.series.capacity) values.push({ run: run.name, flow: CAPACITY, t: p.t, mbps: p.mbps });
  }
  for (const run of results) {
    for (const flow of run.series.flows) {
      const label = flowLabel(results, run, flow);
      for (const p of flow.points) values.push({ run: run.name, flow: label, t: p.t, mbps: p.throughputMbps });
    }
  }
  return timeChart(results, {
    title: `Goodput (${THROUGHPUT_AVERAGE_MS} ms moving average) and bottleneck capacity`,
    values,
    transform: [
      {
        window: [{ op: 'mean', field: 'mbps', as: 'average' }],
        frame: [-(samples - 1), 0],
        groupby: ['run', 'flow'],
        sort: [{ field: 't' }],
      },
    ],
    layer: {
      mark: { type: 'line', strokeWidth: 1, interpolate: 'step-before' },
      encoding: {
        x: timeAxis,
        y: { field: 'average', type: 'quantitative', title: 'Mbit/s' },
        color: colorEncoding(results, { withCapacity: true }),
        strokeDash: {
          condition: { test: `datum.flow === '${CAPACITY}'`, value: [4, 3] },
          value: [1, 0],
        },
      },
    },
  });
}

function throughputDelaySpec(results) {
  const values = [];
  for (const run of results) {
    for (const flow of run.summary.flows) {
      if (flow.goodputMbps === null || flow.owdMs.p95 === null) continue;
      const label = flowLabel(results, run, { id: flow.id, controller: flow.controller }, { withRun: true });
      values.push({ flow: label, delay: flow.owdMs.p95, mbps: flow.goodputMbps });
    }
  }
  const encoding = {
    x: {
      field: 'delay',
      type: 'quantitative',
      title: '95th percentile one-way delay (ms, better to the right)',
      scale: { reverse: true, zero: false, nice: true, padding: 40 },
    },
    y: { field: 'mbps', type: 'quantitative', title: 'goodput (Mbit/s)', scale: { zero: true, padding: 16 } },
    color: colorEncoding(results, { withRun: true }),
  };
  const points = { mark: { type: 'point', filled: true, size: 90 }, encoding };
  // Beyond a handful of points, labels overlap: the legend alone names them.
  const labels = {
    mark: { type: 'text', align: 'left', dx: 7, dy: -7, fontSize: 11 },
    encoding: { ...encoding, text: { field: 'flow' } },
  };
  return {
    title: 'Goodput against delay (measurement window)',
    width: 420,
    height: 320,
    data: { values },
    layer: values.length <= MAX_POINT_LABELS ? [points, labels] : [points],
  };
}

/**
 * Draw every plot for a set of runs of one scenario.
 * @param {object[]} results runs as returned by runExperiment
 * @returns {Promise<Record<string, string>>} file name -> SVG text
 */
async function renderPlots(results) {
  return {
    'cwnd.svg': await renderSvg(cwndSpec(results)),
    'rtt.svg': await renderSvg(rttSpec(results)),
    'throughput.svg': await renderSvg(throughputSpec(results)),
    'throughput-delay.svg': await renderSvg(throughputDelaySpec(results)),
  };
}

module.exports = { renderPlots, renderSvg };
