'use strict';
/**
 * A qlog trace in JSON-SEQ form (RFC 7464: each record is 0x1E, JSON, newline), with QUIC
 * event names where one fits (transport:packet_sent, recovery:metrics_updated, ...) and
 * `minimalt:` for the rest (link drops, link changes). The layout follows qlog 0.3, which
 * qvis reads.
 *
 * Times are the simulator's virtual milliseconds, rounded to microseconds, so the trace of
 * a run depends on nothing but the scenario and its seed.
 */

const RS = '\x1e';
const RECORDS_PER_CHUNK = 2048;

class QlogTrace {
  /**
   * @param {object} options
   * @param {string} options.title
   * @param {() => number} options.clock returns the current time in ms
   * @param {boolean} [options.packets=true] include per-packet events
   * @param {object} [options.configuration] stored in the header (e.g. the scenario)
   */
  constructor({ title, clock, packets = true, configuration = undefined }) {
    this._clock = clock;
    this.packets = packets;
    /** Finished JSON-SEQ text, in large pieces. */
    this._chunks = [];
    /** JSON texts of the latest records, not yet framed and joined into a chunk. */
    this._records = [];
    this._records.push(JSON.stringify({
      qlog_version: '0.3',
      qlog_format: 'JSON-SEQ',
      title,
      trace: {
        vantage_point: { type: 'network', name: 'minimalt-lab simulator' },
        common_fields: { time_format: 'relative', reference_time: 0 },
        configuration,
      },
    }));
  }

  /**
   * Record an event at the current time.
   * @param {string} name e.g. "recovery:packet_lost"
   * @param {object} data
   * @param {string} [groupId] the flow the event belongs to
   */
  event(name, data, groupId) {
    const time = Math.round(this._clock() * 1000) / 1000;
    this._records.push(
      JSON.stringify(groupId === undefined ? { time, name, data } : { time, name, group_id: groupId, data }),
    );
    // Joining small strings into large chunks early lets them die young: holding hundreds
    // of thousands of small strings until the end makes the garbage collector's work grow
    // with the trace.
    if (this._records.length >= RECORDS_PER_CHUNK) this._flushRecords();
  }

  _flushRecords() {
    if (this._records.length === 0) return;
    this._chunks.push(`${RS}${this._records.join(`\n${RS}`)}\n`);
    this._records = [];
  }

  /**
   * A view that tags every event with one group id (what a Sender takes as `qlog`).
   * @param {string} groupId
   * @returns {{packets: boolean, event: (name: string, data: object) => void}}
   */
  forGroup(groupId) {
    return { packets: this.packets, event: (name, data) => this.event(name, data, groupId) };
  }

  /** @returns {string} the whole trace */
  toString() {
    this._flushRecords();
    return this._chunks.join('');
  }
}

/**
 * Parse a JSON-SEQ qlog back into records (header first).
 * @param {string} text
 * @returns {object[]}
 */
function parseQlog(text) {
  return text
    .split(RS)
    .filter((part) => part.trim() !== '')
    .map((part) => JSON.parse(part));
}

module.exports = { QlogTrace, parseQlog };
