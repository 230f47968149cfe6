'use strict';
// The runner's outputs (summary, JSON-SEQ qlog, SVG plots), scenario validation, the
// controller registry and the minimalt-lab command line.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const lab = require('../../js/lab');

const root = path.join(__dirname, '..', '..');
const cli = path.join(root, 'js', 'lab', 'cli.js');
let tmp;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'minimalt-lab-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const small = {
  name: 'small',
  durationMs: 3000,
  link: { preset: 'interop', loss: 0.01 },
  flows: [{}],
  controllers: ['newreno', 'bbr'],
  measure: { fromMs: 1000 },
};

test('runScenario writes a summary, a JSON-SEQ qlog per run and four SVG plots', async () => {
  const result = await lab.runScenario(small, { outDir: tmp });
  expect(fs.readdirSync(tmp).sort()).toEqual(
    ['bbr.sqlog', 'cwnd.svg', 'newreno.sqlog', 'rtt.svg', 'summary.json', 'throughput-delay.svg', 'throughput.svg'],
  );
  const summary = JSON.parse(fs.readFileSync(path.join(tmp, 'summary.json'), 'utf8'));
  expect(summary).toEqual(JSON.parse(JSON.stringify(result.summary)));
  expect(summary.runs.map((r) => r.run)).toEqual(['newreno', 'bbr']);
  for (const run of summary.runs) {
    expect(run.flows[0].goodputMbps).toBeGreaterThan(1);
    expect(run.aggregate.jainIndex).toBe(1);
    expect(run.flows[0].owdMs.p95).toBeGreaterThanOrEqual(15);
  }

  const text = fs.readFileSync(path.join(tmp, 'newreno.sqlog'), 'utf8');
  const records = text.split('\x1e').slice(1);
  expect(text.startsWith('\x1e')).toBe(true);
  for (const record of records) expect(record.endsWith('\n')).toBe(true);
  const [header, ...events] = records.map((r) => JSON.parse(r));
  expect(header).toMatchObject({ qlog_version: '0.3', qlog_format: 'JSON-SEQ' });
  const names = new Set(events.map((e) => e.name));
  for (const name of [
    'transport:packet_sent',
    'transport:packet_received',
    'recovery:metrics_updated',
    'recovery:packet_lost',
    'recovery:congestion_state_updated',
    'minimalt:packet_dropped',
  ]) {
    expect(names).toContain(name);
  }
  const times = events.map((e) => e.time);
  expect(times).toEqual([...times].sort((a, b) => a - b));

  for (const file of ['cwnd.svg', 'rtt.svg', 'throughput.svg', 'throughput-delay.svg']) {
    const svg = fs.readFileSync(path.join(tmp, file), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('newreno');
    expect(svg).toContain('bbr');
  }
});

test.each([
  [{ ...small, durationMs: -1 }, 'scenario.durationMs: must be at least 1'],
  [{ ...small, controllers: ['reno2'] }, 'scenario.controllers[0]: unknown controller "reno2"'],
  [{ ...small, link: { preset: 'moon' } }, 'scenario.link.preset: unknown preset "moon"'],
  [{ ...small, link: { preset: 'interop', queue: { type: 'red' } } }, 'scenario.link.queue.type'],
  [{ ...small, link: { preset: 'interop', schedule: [{ atMs: 1, bandwith: 3 }] } }, 'scenario.link.schedule[0].bandwith: unknown field'],
  [{ ...small, controllers: undefined, flows: [{}] }, 'scenario.flows[0].controller: must name a congestion controller'],
])('an invalid scenario is refused with the field named (%#)', async (scenario, message) => {
  await expect(lab.runScenario(scenario)).rejects.toThrow(message);
  await expect(lab.runScenario(scenario)).rejects.toMatchObject({ code: 'ERR_LAB_SCENARIO' });
});

test('a controller added with registerController runs in a scenario', async () => {
  // A fixed 20-packet window: the smallest possible controller.
  class FixedWindow extends lab.CongestionController {
    constructor(options) {
      super(options);
      this.cwnd = 20 * this.mss;
    }
  }
  lab.registerController('fixed-test', FixedWindow);
  expect(lab.listControllers()).toContain('fixed-test');
  const { runs } = await lab.runScenario(
    { name: 'fixed', durationMs: 3000, link: { preset: 'interop' }, flows: [{ controller: 'fixed-test' }] },
    { plots: false },
  );
  const points = runs[0].series.flows[0].points;
  expect(new Set(points.map((p) => p.cwnd))).toEqual(new Set([24000]));
  // 20 packets per ~31 ms round trip is about 6 Mbit/s of goodput.
  expect(runs[0].summary.flows[0].goodputMbps).toBeGreaterThan(5);
  expect(runs[0].summary.flows[0].goodputMbps).toBeLessThan(7);
});

test('the example comparing controllers names every built-in controller', () => {
  const scenario = lab.loadScenario(path.join(root, 'examples', 'lab', 'compare-controllers.json'));
  const normalised = lab.normalizeScenario(scenario);
  expect(normalised.runs.map((r) => r.name)).toEqual(['newreno', 'cubic', 'bbr', 'vegas']);
  expect(normalised.link).toMatchObject({ bandwidthMbps: 10, delayMs: 15, queue: { packets: 25 } });
});

/** Run the CLI; resolve with its exit code and output, kill it after 30 s. */
function runCli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: tmp });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('minimalt-lab run prints a summary table, writes its files and reports progress when asked', async () => {
  const file = path.join(tmp, 'scenario.json');
  fs.writeFileSync(file, JSON.stringify(small));
  const { code, stdout, stderr } = await runCli(['run', file, '--out', 'out', '--no-trace', '--progress']);
  expect(stderr).toContain('[1/2 newreno] 3 s / 3 s simulated');
  expect(stderr).toContain('[2/2 bbr]');
  expect(code).toBe(0);
  expect(stdout).toMatch(/^run\s+flow\s+controller\s+goodput Mbit\/s/);
  expect(stdout).toMatch(/\nbbr\s+0\s+bbr\s+\d+\.\d\d/);
  expect(fs.readdirSync(path.join(tmp, 'out')).sort()).toEqual(
    ['cwnd.svg', 'rtt.svg', 'summary.json', 'throughput-delay.svg', 'throughput.svg'],
  );
});

test('minimalt-lab run shows no progress on a non-terminal unless asked', async () => {
  const file = path.join(tmp, 'scenario.json');
  fs.writeFileSync(file, JSON.stringify(small));
  const { code, stderr } = await runCli(['run', file, '--out', 'out', '--no-trace', '--no-plots']);
  expect(code).toBe(0);
  expect(stderr).toBe('');
});

test('minimalt-lab reports a bad scenario in one line with exit code 1', async () => {
  const file = path.join(tmp, 'bad.json');
  fs.writeFileSync(file, JSON.stringify({ ...small, controllers: ['nope'] }));
  const { code, stdout, stderr } = await runCli(['run', file]);
  expect(code).toBe(1);
  expect(stdout).toBe('');
  expect(stderr.trim().split('\n')).toEqual([
    expect.stringContaining('minimalt-lab: scenario.controllers[0]: unknown controller "nope"'),
  ]);
});

test('minimalt-lab udp carries a buffer over loopback UDP byte-identical', async () => {
  const { code, stdout } = await runCli(['udp', '--bytes', '200000', '--controller', 'newreno']);
  expect(code).toBe(0);
  expect(stdout).toMatch(/^newreno: 200000 bytes over loopback UDP in [\d.]+ ms .*byte-identical\n$/);
});

test('the custom-controller example registers its controller and compares it with CUBIC', async () => {
  const example = path.join(root, 'examples', 'lab', 'custom-controller.js');
  const { code, stdout } = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [example, '4000'], { cwd: tmp });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, stdout: out }));
  });
  expect(code).toBe(0);
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^gentle-aimd\s+goodput \d+\.\d\d Mbit\/s/);
  expect(lines[1]).toMatch(/^cubic\s+goodput \d+\.\d\d Mbit\/s/);
});
