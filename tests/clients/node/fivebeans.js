'use strict';
// fivebeans (pinned in package.json), unmodified, over its whole API against
// the daemon on 127.0.0.1:PORT: the client (every beanstalkd command it
// offers: it has no reserve-job) and FiveBeansWorker. The runner
// (FiveBeansRunner) is a command-line wrapper that loads handler modules from
// a YAML config and starts a FiveBeansWorker, so the worker part is what is
// driven here.
//
// fivebeans is callback-style: client.CMD(args..., function(err, results...)).
// Errors arrive as the reply's first word ('NOT_FOUND', 'TIMED_OUT', ...).
// Ids and counts arrive as strings; YAML replies are parsed by js-yaml.

const C = require('./common');
const { step, eq, ok, rejects, waitFor, HOST } = C;
const fivebeans = C.lib('fivebeans');

const NO_SUCH_JOB = '999999999';

function connect(port) {
    return new Promise((resolve, reject) => {
        const c = new fivebeans.client(HOST, port);
        c.once('connect', () => resolve(c));
        c.once('error', reject);
        c.connect();
    });
}

// call(c, 'stats_job', id) resolves with the callback's results after err.
const call = C.callback;

// Ends a client and waits for the server to close its side. (fivebeans'
// quit() sends "quit" but its callback never fires: the library only runs
// callbacks when reply bytes arrive, and quit has no reply. So the 'close'
// event is what is waited for.)
function quit(c) {
    return new Promise((resolve) => {
        c.once('close', resolve);
        c.quit(() => {});
    });
}

C.main('fivebeans', async (port) => {
    let puts = 0;

    step('connect producer and worker');
    const p = await connect(port);
    const w = await connect(port);

    step('initial tube state');
    eq(await call(p, 'list_tube_used'), ['default'], 'list_tube_used');
    eq(await call(p, 'list_tubes'), [['default']], 'list_tubes');
    eq(await call(w, 'list_tubes_watched'), [['default']], 'list_tubes_watched');

    step('use');
    eq(await call(p, 'use', 'fb-main'), ['fb-main'], 'use reply');
    eq(await call(p, 'list_tube_used'), ['fb-main'], 'list_tube_used after use');

    step('put with priority, delay and ttr');
    const [idA] = await call(p, 'put', 10, 0, 30, 'alpha'); puts++;
    const [idB] = await call(p, 'put', 5, 0, 30, Buffer.from('bravo')); puts++;
    const [idC] = await call(p, 'put', 100, 3600, 30, 'charlie'); puts++;
    const bin = C.binaryPayload();
    const [idD] = await call(p, 'put', 2000, 0, 45, bin); puts++;
    for (const id of [idA, idB, idC, idD]) ok(/^\d+$/.test(id), `put returned a numeric id, got ${C.show(id)}`);
    ok(Number(idA) < Number(idB) && Number(idB) < Number(idC) && Number(idC) < Number(idD), 'ids increase');

    step('peek, peek_ready, peek_delayed, peek_buried');
    eq(await call(p, 'peek', idA), [idA, Buffer.from('alpha')], 'peek A');
    eq(await call(p, 'peek', idD), [idD, bin], 'peek D (binary payload)');
    eq(await call(p, 'peek_ready'), [idB, Buffer.from('bravo')], 'peek_ready gives the most urgent job');
    eq(await call(p, 'peek_delayed'), [idC, Buffer.from('charlie')], 'peek_delayed');
    await rejects(call(p, 'peek_buried'), /^NOT_FOUND$/, 'peek_buried with nothing buried');

    step('stats_job');
    let [sj] = await call(p, 'stats_job', idA);
    eq([sj.id, sj.tube, sj.state, sj.pri, sj.delay, sj.ttr, sj.reserves, sj.releases, sj.buries, sj.kicks, sj.timeouts],
       [Number(idA), 'fb-main', 'ready', 10, 0, 30, 0, 0, 0, 0, 0], 'stats_job A');
    [sj] = await call(p, 'stats_job', idC);
    eq([sj.state, sj.pri, sj.delay], ['delayed', 100, 3600], 'stats_job C (delayed)');
    ok(sj['time-left'] > 3500 && sj['time-left'] <= 3600, `delayed time-left near 3600, got ${sj['time-left']}`);
    [sj] = await call(p, 'stats_job', idD);
    eq([sj.pri, sj.ttr], [2000, 45], 'stats_job D');

    step('stats_tube and list_tubes');
    let [st] = await call(p, 'stats_tube', 'fb-main');
    eq([st.name, st['current-jobs-urgent'], st['current-jobs-ready'], st['current-jobs-delayed'], st['current-jobs-buried'],
        st['current-jobs-reserved'], st['total-jobs'], st['current-using'], st['current-watching'], st.pause],
       ['fb-main', 2, 3, 1, 0, 0, 4, 1, 0, 0], 'stats_tube after four puts');
    const [tubes] = await call(p, 'list_tubes');
    eq([...tubes].sort(), ['default', 'fb-main'], 'list_tubes');

    step('watch and ignore');
    eq(await call(w, 'watch', 'fb-main'), ['2'], 'watch reply');
    eq(await call(w, 'ignore', 'default'), ['1'], 'ignore reply');
    eq(await call(w, 'list_tubes_watched'), [['fb-main']], 'list_tubes_watched');
    await rejects(call(w, 'ignore', 'fb-main'), /^NOT_IGNORED$/, 'ignoring the last watched tube');
    [st] = await call(p, 'stats_tube', 'fb-main');
    eq(st['current-watching'], 1, 'current-watching');

    step('reserve, touch, release');
    eq(await call(w, 'reserve'), [idB, Buffer.from('bravo')], 'reserve gives the most urgent job');
    [sj] = await call(p, 'stats_job', idB);
    eq([sj.state, sj.reserves], ['reserved', 1], 'stats_job B reserved');
    ok(sj['time-left'] >= 28 && sj['time-left'] <= 30, `reserved time-left near ttr, got ${sj['time-left']}`);
    eq(await call(w, 'touch', idB), [], 'touch');
    await rejects(call(p, 'touch', idB), /^NOT_FOUND$/, 'touch by a connection that does not hold it');
    eq(await call(w, 'release', idB, 50, 0), [], 'release');
    [sj] = await call(p, 'stats_job', idB);
    eq([sj.state, sj.pri, sj.releases], ['ready', 50, 1], 'stats_job B after release');

    step('reserve_with_timeout, bury, peek_buried, kick_job');
    eq(await call(w, 'reserve_with_timeout', 0), [idA, Buffer.from('alpha')], 'reserve_with_timeout 0');
    eq(await call(w, 'bury', idA, 20), [], 'bury');
    eq(await call(p, 'peek_buried'), [idA, Buffer.from('alpha')], 'peek_buried');
    [sj] = await call(p, 'stats_job', idA);
    eq([sj.state, sj.pri, sj.buries], ['buried', 20, 1], 'stats_job A buried');
    [st] = await call(p, 'stats_tube', 'fb-main');
    eq([st['current-jobs-buried'], st['current-jobs-ready']], [1, 2], 'stats_tube with one buried');
    eq(await call(p, 'kick_job', idA), [], 'kick_job of a buried job');
    [sj] = await call(p, 'stats_job', idA);
    eq([sj.state, sj.kicks], ['ready', 1], 'stats_job A kicked');

    step('kick (buried first)');
    eq(await call(w, 'reserve'), [idA, Buffer.from('alpha')], 'reserve A again');
    eq(await call(w, 'bury', idA, 20), [], 'bury A again');
    eq(await call(p, 'kick', 10), ['1'], 'kick kicks the one buried job, not the delayed one');
    [sj] = await call(p, 'stats_job', idA);
    eq([sj.state, sj.kicks, sj.buries], ['ready', 2, 2], 'stats_job A after kick');
    eq(await call(p, 'peek_delayed'), [idC, Buffer.from('charlie')], 'the delayed job is still delayed');

    step('kick_job of a delayed job');
    eq(await call(p, 'kick_job', idC), [], 'kick_job C');
    [sj] = await call(p, 'stats_job', idC);
    eq([sj.state, sj.kicks], ['ready', 1], 'stats_job C kicked');
    await rejects(call(p, 'peek_delayed'), /^NOT_FOUND$/, 'peek_delayed with nothing delayed');

    step('NOT_FOUND replies');
    for (const [m, args] of [['destroy', [NO_SUCH_JOB]], ['release', [NO_SUCH_JOB, 0, 0]], ['bury', [NO_SUCH_JOB, 0]],
                             ['touch', [NO_SUCH_JOB]], ['kick_job', [NO_SUCH_JOB]], ['peek', [NO_SUCH_JOB]],
                             ['stats_job', [NO_SUCH_JOB]], ['stats_tube', ['fb-no-such-tube']],
                             ['pause_tube', ['fb-no-such-tube', 1]]]) {
        await rejects(call(p, m, ...args), /^NOT_FOUND$/, `${m} of something that does not exist`);
    }
    await rejects(call(p, 'release', idA, 0, 0), /^NOT_FOUND$/, 'release of a job that is not reserved');

    step('pipelined commands on one connection');
    // fivebeans queues a handler per command and matches replies in order, so
    // several commands may be in flight at once; replies with bodies and
    // without are mixed so one read holds several replies.
    const piped = await Promise.all([
        call(p, 'peek', idA), call(p, 'list_tube_used'), call(p, 'stats_job', idB), call(p, 'peek', idD),
        call(p, 'kick', 0), call(p, 'peek_ready'),
    ]);
    eq(piped[0], [idA, Buffer.from('alpha')], 'pipelined peek A');
    eq(piped[1], ['fb-main'], 'pipelined list_tube_used');
    eq(piped[2][0].id, Number(idB), 'pipelined stats_job');
    eq(piped[3], [idD, bin], 'pipelined peek D');
    eq(piped[4], ['0'], 'pipelined kick 0');
    eq(piped[5], [idA, Buffer.from('alpha')], 'pipelined peek_ready');

    step('reserve in priority order and delete');
    for (const [id, body] of [[idA, Buffer.from('alpha')], [idB, Buffer.from('bravo')], [idC, Buffer.from('charlie')], [idD, bin]]) {
        eq(await call(w, 'reserve'), [id, body], `reserve ${id}`);
        eq(await call(w, 'destroy', id), [], `destroy ${id}`);
    }
    await rejects(call(w, 'reserve_with_timeout', 0), /^TIMED_OUT$/, 'reserve_with_timeout on an empty tube');
    await rejects(call(p, 'peek_ready'), /^NOT_FOUND$/, 'peek_ready on an empty tube');

    step('a delayed job becomes ready by itself');
    const [idE] = await call(p, 'put', 0, 1, 30, 'echo'); puts++;
    [sj] = await call(p, 'stats_job', idE);
    eq(sj.state, 'delayed', 'state of a job put with delay 1');
    eq(await call(w, 'reserve_with_timeout', 5), [idE, Buffer.from('echo')], 'reserve_with_timeout waits for the delay');
    eq(await call(w, 'destroy', idE), [], 'destroy E');

    step('a blocked reserve is served by another connection\'s put');
    const pending = call(w, 'reserve');
    await waitFor(async () => (await call(p, 'stats_tube', 'fb-main'))[0]['current-waiting'] === 1, 'the worker to be waiting');
    const [idF] = await call(p, 'put', 0, 0, 30, 'foxtrot'); puts++;
    eq(await pending, [idF, Buffer.from('foxtrot')], 'blocked reserve');
    eq(await call(w, 'destroy', idF), [], 'destroy F');

    step('pause_tube');
    eq(await call(p, 'pause_tube', 'fb-main', 1), [], 'pause_tube');
    [st] = await call(p, 'stats_tube', 'fb-main');
    eq([st.pause, st['cmd-pause-tube']], [1, 1], 'stats_tube of a paused tube');
    ok(st['pause-time-left'] <= 1, `pause-time-left <= 1, got ${st['pause-time-left']}`);
    const [idG] = await call(p, 'put', 0, 0, 30, 'golf'); puts++;
    await rejects(call(w, 'reserve_with_timeout', 0), /^TIMED_OUT$/, 'reserve from a paused tube');
    eq(await call(w, 'reserve_with_timeout', 5), [idG, Buffer.from('golf')], 'reserve once the pause ends');
    eq(await call(w, 'destroy', idG), [], 'destroy G');

    step('DEADLINE_SOON, and a ttr timeout hands the job to a waiting worker');
    const [idH] = await call(p, 'put', 0, 0, 1, 'hotel'); puts++;
    eq(await call(w, 'reserve'), [idH, Buffer.from('hotel')], 'reserve H (ttr 1)');
    await rejects(call(w, 'reserve_with_timeout', 2), /^DEADLINE_SOON$/, 'reserve while holding a job in its last second');
    // A third worker waits for work; H's ttr runs out and the server takes
    // it back from w and hands it over. (Stock 1.12 may miss the deadline:
    // see reserveAfterTtr in common.js.)
    const w3 = await connect(port);
    eq(await call(w3, 'watch', 'fb-main'), ['2'], 'third worker watch');
    const gotH = await C.reserveAfterTtr(call(w3, 'reserve_with_timeout', 5), (r, e) => e && e.message === 'TIMED_OUT');
    let timeouts = 1;
    if (gotH === null) {
        // Reference run only: stock missed H's deadline. w deletes it (held
        // or ready by now), w3 then finds nothing: the same commands counted.
        [sj] = await call(p, 'stats_job', idH);
        timeouts = sj.timeouts;
        eq(await call(w, 'destroy', idH), [], 'stock: the holder deletes H');
        await rejects(call(w3, 'destroy', idH), /^NOT_FOUND$/, 'stock: H is gone');
    } else {
        eq(gotH, [idH, Buffer.from('hotel')], 'H after its ttr ran out');
        [sj] = await call(p, 'stats_job', idH);
        eq([sj.state, sj.reserves, sj.timeouts], ['reserved', 2, 1], 'stats_job H after the timeout');
        await rejects(call(w, 'destroy', idH), /^NOT_FOUND$/, 'delete by the worker whose reservation timed out');
        eq(await call(w3, 'destroy', idH), [], 'destroy H');
    }
    await quit(w3);

    step('largest job and JOB_TOO_BIG');
    const big = Buffer.alloc(65535, 'x');
    big.write('\r\n', 30000, 'latin1');
    const [idI] = await call(p, 'put', 0, 0, 30, big); puts++;
    eq(await call(w, 'reserve'), [idI, big], 'reserve the 65535-byte job');
    eq(await call(w, 'destroy', idI), [], 'destroy I');
    await rejects(call(p, 'put', 0, 0, 30, Buffer.alloc(65536, 'y')), /^JOB_TOO_BIG$/, 'put of 65536 bytes');
    const tooBig = 1;   // counted in cmd-put, not in total-jobs
    eq(await call(p, 'list_tube_used'), ['fb-main'], 'the connection still works after JOB_TOO_BIG');

    step('a reservation is released when its connection closes');
    const w2 = await connect(port);
    eq(await call(w2, 'watch', 'fb-main'), ['2'], 'second worker watch');
    const [idJ] = await call(p, 'put', 0, 0, 30, 'juliett'); puts++;
    eq(await call(w2, 'reserve'), [idJ, Buffer.from('juliett')], 'second worker reserves J');
    await quit(w2);
    await waitFor(async () => (await call(p, 'stats_job', idJ))[0].state === 'ready', 'J to be ready again');
    eq(await call(p, 'destroy', idJ), [], 'destroy J');

    step('stats');
    const [s] = await call(p, 'stats');
    ok(String(s.version).length > 0, 'stats has a version');
    // cmd-pause-tube counts the pause_tube that got NOT_FOUND too.
    eq([s['cmd-put'], s['total-jobs'], s['current-jobs-ready'], s['current-jobs-reserved'], s['cmd-pause-tube'],
        s['job-timeouts'], s['max-job-size']], [puts + tooBig, puts, 0, 0, 2, timeouts, 65535], 'server stats');
    ok(s['current-connections'] >= 2, `current-connections >= 2, got ${s['current-connections']}`);
    // Every command counts, whatever its reply (NOT_FOUND, DEADLINE_SOON, ...).
    const counters = ['cmd-reserve', 'cmd-reserve-with-timeout', 'cmd-delete', 'cmd-release', 'cmd-bury', 'cmd-kick',
                      'cmd-touch', 'cmd-use', 'cmd-watch', 'cmd-ignore', 'cmd-peek', 'cmd-peek-buried'];
    eq(counters.map((k) => s[k]), [10, 7, 12, 3, 3, 2, 3, 1, 3, 2, 5, 2], `counters ${counters.join(' ')}`);
    ok(Number.isInteger(s.pid) && s.pid > 0 && Number.isInteger(s.uptime), 'pid and uptime');

    step('FiveBeansWorker');
    eq(await call(p, 'use', 'fb-work'), ['fb-work'], 'use fb-work');
    const seen = [];
    let retries = 0;
    let worker;
    const handlers = {
        ok: { work: (payload, cb) => { seen.push(['ok', payload]); cb('success'); } },
        retry: { work: (payload, cb) => { seen.push(['retry', payload]); retries++; cb(retries === 1 ? 'release' : 'success', 0); } },
        broken: { work: (payload, cb) => { seen.push(['broken', payload]); cb('bury'); } },
        // A three-argument handler gets the job id too.
        withid: { work: (jobId, payload, cb) => { seen.push(['withid', payload, jobId]); cb('success'); } },
        stop: { work: (payload, cb) => { seen.push(['stop', payload]); worker.stop(); cb('success'); } },
    };
    const wjobs = {};
    for (const [name, pri, body] of [
        ['ok', 1000, JSON.stringify({ type: 'ok', payload: 'one' })],
        ['retry', 1000, JSON.stringify({ type: 'retry', payload: { n: 2 } })],
        ['broken', 1000, JSON.stringify({ type: 'broken', payload: null })],
        ['notjson', 1000, 'this is not JSON'],
        ['nohandler', 1000, JSON.stringify({ type: 'nohandler', payload: 5 })],
        ['array', 1000, JSON.stringify(['fb-work', { type: 'ok', payload: 'array form' }])],
        ['withid', 1000, JSON.stringify({ type: 'withid', payload: 'id please' })],
        ['notype', 1000, JSON.stringify({ payload: 'no type' })],
        ['stop', 2000, JSON.stringify({ type: 'stop', payload: 'bye' })],
    ]) {
        [wjobs[name]] = await call(p, 'put', pri, 0, 30, body); puts++;
    }
    const events = { 'job.reserved': 0, 'job.deleted': 0, 'job.buried': 0, 'job.released': 0, started: 0, error: 0 };
    await new Promise((resolve) => {
        worker = new fivebeans.worker({ id: 'w1', host: HOST, port, handlers, ignoreDefault: true, timeout: 1 });
        for (const e of Object.keys(events)) worker.on(e, () => { events[e]++; });
        worker.on('warning', () => {});
        worker.on('info', () => {});
        worker.once('stopped', resolve);
        worker.start(['fb-work']);
    });
    eq(seen, [
        ['ok', 'one'], ['retry', { n: 2 }], ['retry', { n: 2 }], ['broken', null], ['ok', 'array form'],
        ['withid', 'id please', wjobs.withid], ['stop', 'bye'],
    ], 'jobs the worker handed to handlers, in order');
    eq(events, { 'job.reserved': 10, 'job.deleted': 6, 'job.buried': 3, 'job.released': 1, started: 1, error: 0 },
       'worker events');
    [st] = await call(p, 'stats_tube', 'fb-work');
    eq([st['current-jobs-ready'], st['current-jobs-buried'], st['current-jobs-reserved'], st['cmd-delete']], [0, 3, 0, 6],
       'fb-work after the worker stopped');
    const buried = [];
    for (;;) {
        try {
            const [id] = await call(p, 'peek_buried');
            buried.push(id);
            await call(p, 'destroy', id);
        } catch (e) {
            eq(e.message, 'NOT_FOUND', 'peek_buried end');
            break;
        }
    }
    eq(buried, [wjobs.broken, wjobs.notjson, wjobs.nohandler], 'jobs the worker buried');

    step('quit');
    await quit(w);
    await quit(p);
});
