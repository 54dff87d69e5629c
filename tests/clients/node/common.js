'use strict';
// Shared by the Node client scenarios: where the pinned client libraries
// live, assertions that name the step that failed, a watchdog so a client
// that hangs fails the scenario instead of the CI run, polling helpers, and a
// small reader for the YAML that beanstalkd sends (for clients, like jackd,
// that hand it back unparsed).
//
// A scenario is `node <scenario>.js PORT`; it exits 0 when every assertion
// held and 1, with one "FAIL ..." line on stderr, at the first that did not.

const path = require('path');
const util = require('util');

const HOST = '127.0.0.1';
const CACHE = process.env.BS_NODE_CACHE || path.join(__dirname, '.cache');
const WATCHDOG_MS = Number(process.env.BS_NODE_WATCHDOG_MS || 30000);
// Set (BS_REFERENCE=1) when the daemon is stock beanstalkd, as in the
// protocol tests: the one place it changes anything is reserveAfterTtr.
const REFERENCE = process.env.BS_REFERENCE === '1';

let scenario = path.basename(process.argv[1] || '?', '.js');
let current = '(start)';
const verbose = !!process.env.VERBOSE;

// The client libraries are installed by setup.sh into the cache, outside the
// tracked tree; load them from there by absolute path (no NODE_PATH needed).
function lib(name) {
    try {
        return require(path.join(CACHE, 'node_modules', name));
    } catch (e) {
        if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(name)) {
            console.error(`SKIP [${scenario}]: ${name} is not installed in ${CACHE}; run tests/clients/node/setup.sh`);
            process.exit(77);
        }
        throw e;
    }
}

function port() {
    const p = Number(process.argv[2]);
    if (!Number.isInteger(p) || p <= 0 || p > 65535) {
        console.error(`usage: node ${scenario}.js PORT`);
        process.exit(2);
    }
    return p;
}

function fail(msg) {
    console.error(`FAIL [${scenario}] at step "${current}": ${msg}`);
    process.exit(1);
}

function step(name) {
    current = name;
    if (verbose) console.log(`  - ${name}`);
}

function show(v) {
    if (Buffer.isBuffer(v)) {
        return v.length > 64 ? `<Buffer ${v.length} bytes ${JSON.stringify(v.subarray(0, 32).toString('latin1'))}...>`
                             : `<Buffer ${JSON.stringify(v.toString('latin1'))}>`;
    }
    return util.inspect(v, { depth: 4, breakLength: 120 });
}

function eq(actual, expected, what) {
    if (!util.isDeepStrictEqual(actual, expected)) {
        fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
    }
}

function ok(cond, what) {
    if (!cond) fail(what);
}

// Asserts a promise rejects and the error's text matches `pattern`; returns
// the error so the caller can check more of it.
async function rejects(promise, pattern, what) {
    let value;
    try {
        value = await promise;
    } catch (err) {
        const text = err && err.message !== undefined ? String(err.message) : String(err);
        if (!pattern.test(text)) fail(`${what}: expected an error matching ${pattern}, got ${show(err)}`);
        return err;
    }
    fail(`${what}: expected an error matching ${pattern}, but it succeeded with ${show(value)}`);
    return undefined;
}

// Polls `probe` (async, returns a truthy value when done) every 20 ms until
// it holds or `ms` pass: readiness by observation, never a fixed sleep.
async function waitFor(probe, what, ms = 5000) {
    const deadline = Date.now() + ms;
    let last;
    for (;;) {
        last = await probe();
        if (last) return last;
        if (Date.now() > deadline) fail(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

// Calls a callback-style method (callback last, error first) and resolves
// with the array of results after the error, or rejects with the error.
function callback(obj, method, ...args) {
    return new Promise((resolve, reject) => {
        obj[method](...args, (err, ...results) => {
            if (err) reject(err instanceof Error ? err : new Error(String(err)));
            else resolve(results);
        });
    });
}

// Just enough YAML for beanstalkd's replies: a "---" line, then either
// "key: value" lines (a mapping) or "- item" lines (a sequence). Values that
// look like numbers become numbers, true/false become booleans, and quoted
// strings lose their quotes.
function parseYaml(text) {
    const lines = String(text).split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l !== '');
    if (lines[0] !== '---') fail(`YAML reply does not start with "---": ${show(text)}`);
    const body = lines.slice(1);
    const scalar = (s) => {
        if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
        if (s === 'true') return true;
        if (s === 'false') return false;
        const m = /^"(.*)"$/.exec(s);
        return m ? m[1] : s;
    };
    if (body.length && body.every((l) => l.startsWith('- '))) return body.map((l) => scalar(l.slice(2)));
    const map = {};
    for (const l of body) {
        const i = l.indexOf(': ');
        if (i < 0) fail(`YAML line without "key: value": ${show(l)}`);
        map[l.slice(0, i)] = scalar(l.slice(i + 2));
    }
    return map;
}

// A worker waits (reserve with a timeout) for a job whose holder's ttr runs
// out. Stock beanstalkd 1.12 now and then misses such a deadline for
// seconds (the job stays "reserved" with a negative time-left; see
// /work/notes/clients-node.md), so only in a reference run is the reserve
// allowed to time out: then this returns null. `timedOut(result, error)`
// says whether the library reported TIMED_OUT.
function missed() {
    console.log(`  note [${scenario}]: the reference server missed a ttr deadline (tolerated: BS_REFERENCE=1)`);
    return null;
}

async function reserveAfterTtr(promise, timedOut) {
    let result;
    try {
        result = await promise;
    } catch (e) {
        if (REFERENCE && timedOut(undefined, e)) return missed();
        throw e;
    }
    if (REFERENCE && timedOut(result, undefined)) return missed();
    return result;
}

// Every byte value, CR LF pairs included, so binary-safety is checked.
function binaryPayload() {
    const b = Buffer.alloc(300);
    for (let i = 0; i < b.length; i++) b[i] = i % 256;
    b.write('\r\n', 10, 'latin1');
    return b;
}

// Runs a scenario: a watchdog, a clear message for any exception, and an
// explicit exit so a socket a library left open cannot keep node alive.
function main(name, fn) {
    scenario = name;
    const t0 = Date.now();
    const dog = setTimeout(() => fail(`watchdog: scenario still running after ${WATCHDOG_MS} ms`), WATCHDOG_MS);
    process.on('unhandledRejection', (err) => fail(`unhandled rejection: ${err && err.stack ? err.stack : show(err)}`));
    process.on('uncaughtException', (err) => fail(`uncaught exception: ${err && err.stack ? err.stack : show(err)}`));
    Promise.resolve()
        .then(() => fn(port()))
        .then(() => {
            clearTimeout(dog);
            console.log(`ok [${scenario}] ${Date.now() - t0} ms`);
            process.exit(0);
        }, (err) => fail(err && err.stack ? err.stack : show(err)));
}

module.exports = {
    HOST, CACHE, REFERENCE, lib, reserveAfterTtr, port, fail, step, eq, ok, rejects, waitFor, callback, parseYaml, binaryPayload, main, show,
};
