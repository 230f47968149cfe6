'use strict';
/**
 * The errors the module raises: plain `Error`s with a `code`, as Node's `net` does. Codes of
 * `net` where one fits (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EADDRINUSE, ...), ours where
 * none does. The full table is in docs/bridge.md.
 */

/** Codes of our own, with what they mean. */
const CODES = Object.freeze({
  EMLTBRIDGE: 'the Python bridge process failed, exited or broke the pipe protocol',
  EMLTNOPYTHON: 'no Python with the minimalt package could be started',
  EMLTVERSION: 'the bridge speaks another protocol version',
  EMLTCLOSED: 'the tunnel carrying the connection closed (peer shut down or closed it)',
  EMLTRECORD: 'the server record is malformed, expired, badly signed or not the pinned identity',
  EMLTDIRECTORY: 'the directory is not configured, unreachable, or refused the request',
  EMLTIDENTITY: 'the identity file could not be read',
  EMLTPROTO: 'the peer broke the protocol',
  EMLTLOCAL: 'the connection was used in a way the protocol does not allow',
  EMLTOS: 'an operating system error without an errno',
  EMLTINTERNAL: 'an unexpected error inside the bridge',
});

/**
 * @param {string} code
 * @param {string} message
 * @param {object} [fields] extra properties (mltCode, syscall, ...)
 * @returns {Error}
 */
function makeError(code, message, fields) {
  const error = new Error(message);
  error.code = code;
  if (fields) Object.assign(error, fields);
  return error;
}

/**
 * An Error from an `err` or `error` frame of the bridge.
 * @param {{code?: string, message?: string, mlt?: number}} frame
 * @param {object} [fields]
 */
function errorFromFrame(frame, fields) {
  const extra = { ...fields };
  if (typeof frame.mlt === 'number') extra.mltCode = frame.mlt;
  if (typeof frame.directory === 'string') extra.directoryCode = frame.directory;
  return makeError(frame.code || 'EMLTINTERNAL', frame.message || frame.code || 'bridge error', extra);
}

function invalidArg(name, expected, value) {
  const shown = value === undefined ? 'undefined' : typeof value === 'string' ? `'${value}'` : typeof value;
  const error = new TypeError(`The "${name}" argument must be ${expected}. Received ${shown}`);
  error.code = 'ERR_INVALID_ARG_TYPE';
  return error;
}

module.exports = { CODES, makeError, errorFromFrame, invalidArg };
