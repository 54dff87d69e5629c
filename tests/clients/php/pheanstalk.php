<?php
// pheanstalk (Debian php-pda-pheanstalk, 4.x), unmodified, over its whole
// public API against a fresh daemon on 127.0.0.1:PORT.
//
// pheanstalk 4 offers no reserve-job (added in 5.x), so it is not covered
// here. Its YAML parser returns every stats value as a string, so numeric
// stats are compared as strings.

declare(strict_types=1);

require __DIR__ . '/common.php';
require '/usr/share/php/Pheanstalk/autoload.php';

use Pheanstalk\Exception\DeadlineSoonException;
use Pheanstalk\Exception\JobNotFoundException;
use Pheanstalk\Exception\JobTooBigException;
use Pheanstalk\Exception\ServerBadFormatException;
use Pheanstalk\Exception\ServerException;
use Pheanstalk\Job;
use Pheanstalk\JobId;
use Pheanstalk\Pheanstalk;

$port = scenario_port();
$p = Pheanstalk::create('127.0.0.1', $port, 5);

function sorted(array $a): array
{
    sort($a);
    return $a;
}

// ---- a fresh server: one tube, used and watched ----
eq($p->listTubes(), ['default'], 'list-tubes on a fresh server');
eq($p->listTubeUsed(true), 'default', 'list-tube-used on a fresh server');
eq($p->listTubesWatched(true), ['default'], 'list-tubes-watched on a fresh server');
eq($p->peekReady(), null, 'peek-ready on an empty tube');
eq($p->peekDelayed(), null, 'peek-delayed on an empty tube');
eq($p->peekBuried(), null, 'peek-buried on an empty tube');

// ---- use, put with priority / delay / TTR ----
$p->useTube('ph-a');
eq($p->listTubeUsed(true), 'ph-a', 'list-tube-used after use');
$first = $p->put('first', 10, 0, 30);
check($first instanceof Job && $first->getId() > 0, 'put returns a job with an id');
eq($first->getData(), 'first', 'put returns the job with its data');
$urgent = $p->put('urgent', 5, 0, 30);
check($urgent->getId() > $first->getId(), 'job ids grow');
$binary = "bin\r\n\0\xff\r\nend";
$bin = $p->put($binary);                       // library defaults: pri 1024, delay 0, ttr 60
eq(sorted($p->listTubes()), ['default', 'ph-a'], 'list-tubes after use+put');

$st = $p->statsJob($first);
eq($st['id'], (string) $first->getId(), 'stats-job id');
eq(unquote($st['tube']), 'ph-a', 'stats-job tube (quoted by 1.13, see unquote())');
eq($st['state'], 'ready', 'stats-job state of a new job');
eq($st['pri'], '10', 'stats-job pri');
eq($st['delay'], '0', 'stats-job delay');
eq($st['ttr'], '30', 'stats-job ttr');
eq($st->reserves, '0', 'stats-job reserves (property access)');
$sb = $p->statsJob($bin);
eq([$sb['pri'], $sb['ttr']], ['1024', '60'], 'put defaults: pri 1024, ttr 60');

$peeked = $p->peek($bin);
eq($peeked->getData(), $binary, 'peek returns binary data byte for byte');
eq($peeked->getId(), $bin->getId(), 'peek returns the id asked for');
$ready = $p->peekReady();
eq($ready->getId(), $urgent->getId(), 'peek-ready gives the most urgent job');
eq($ready->getData(), 'urgent', 'peek-ready data');
eq($p->peek(new JobId($first->getId()))->getData(), 'first', 'peek by a bare JobId');

$t = $p->statsTube('ph-a');
eq(unquote($t['name']), 'ph-a', 'stats-tube name (quoted by 1.13, see unquote())');
eq($t['current-jobs-ready'], '3', 'stats-tube current-jobs-ready');
eq($t['total-jobs'], '3', 'stats-tube total-jobs');
eq($t['current-using'], '1', 'stats-tube current-using');
eq($t['current-watching'], '0', 'stats-tube current-watching');
eq($t['pause'], '0', 'stats-tube pause');

// ---- watch / ignore ----
$p->watch('ph-a');
eq(sorted($p->listTubesWatched(true)), ['default', 'ph-a'], 'list-tubes-watched after watch');
$p->ignore('default');
eq($p->listTubesWatched(true), ['ph-a'], 'list-tubes-watched after ignore');
$e = throws(ServerException::class, function () use ($p) { $p->ignore('ph-a'); },
    'ignore of the last watched tube');
check(strpos($e->getMessage(), 'NOT_IGNORED') === 0, 'ignore of the last tube says NOT_IGNORED');
eq($p->statsTube('ph-a')['current-watching'], '1', 'stats-tube current-watching after watch');
$p->watchOnly('ph-a');
eq($p->listTubesWatched(true), ['ph-a'], 'watchOnly keeps one tube');

// ---- reserve, reserve with timeout, touch, release, bury, kick ----
$r1 = $p->reserveWithTimeout(0);
eq($r1->getId(), $urgent->getId(), 'reserve-with-timeout 0 gives the most urgent job');
eq($r1->getData(), 'urgent', 'reserved data');
$r2 = $p->reserve();
eq($r2->getId(), $first->getId(), 'reserve gives the next by priority');
$s = $p->statsJob($r2);
eq([$s['state'], $s['reserves']], ['reserved', '1'], 'stats-job of a reserved job');
check((int) $s['time-left'] <= 30, 'time-left within the TTR');
$p->touch($r2);
eq($p->statsJob($r2)['state'], 'reserved', 'touched job stays reserved');

$p->release($r1, 20, 0);
$s = $p->statsJob($r1);
eq([$s['state'], $s['pri'], $s['releases']], ['ready', '20', '1'], 'release with a new priority');

$p->bury($r2, 7);
$s = $p->statsJob($r2);
eq([$s['state'], $s['pri'], $s['buries']], ['buried', '7', '1'], 'bury with a new priority');
eq($p->peekBuried()->getId(), $r2->getId(), 'peek-buried');
eq($p->statsTube('ph-a')['current-jobs-buried'], '1', 'stats-tube current-jobs-buried');
throws(JobNotFoundException::class, function () use ($p, $r2) { $p->touch($r2); },
    'touch of a job that is not reserved');
throws(JobNotFoundException::class, function () use ($p, $r2) { $p->release($r2); },
    'release of a job that is not reserved');
throws(JobNotFoundException::class, function () use ($p, $r2) { $p->bury($r2); },
    'bury of a job that is not reserved');

eq($p->kick(10), 1, 'kick moves the one buried job');
$s = $p->statsJob($r2);
eq([$s['state'], $s['kicks']], ['ready', '1'], 'kicked job is ready');
eq($p->kick(10), 0, 'kick with nothing buried or delayed');

// reserve it again (pri 7 is now the most urgent), bury, kick-job
$r = $p->reserve();
eq($r->getId(), $r2->getId(), 'kicked job is reserved first (pri 7)');
$p->bury($r);
$p->kickJob($r);
eq($p->statsJob($r)['state'], 'ready', 'kick-job of a buried job');
throws(JobNotFoundException::class, function () use ($p, $r) { $p->kickJob($r); },
    'kick-job of a ready job');

// ---- delayed jobs: peek-delayed, kick-job, kick, natural expiry ----
$far = $p->put('far', 0, 3600, 60);
$s = $p->statsJob($far);
eq([$s['state'], $s['delay']], ['delayed', '3600'], 'put with a delay');
check((int) $s['time-left'] > 3500, 'delayed time-left');
eq($p->peekDelayed()->getId(), $far->getId(), 'peek-delayed');
$p->kickJob($far);
eq($p->statsJob($far)['state'], 'ready', 'kick-job of a delayed job');
$p->delete($far);

$far2 = $p->put('far2', 0, 3600, 60);
eq($p->kick(5), 1, 'kick moves a delayed job when nothing is buried');
eq($p->statsJob($far2)['state'], 'ready', 'kicked delayed job is ready');
$p->delete($far2);

// A short delay passes in real time: a blocking reserve-with-timeout in its
// own tube returns the job as soon as it is ready.
$p->useTube('ph-delay')->watchOnly('ph-delay');
$soon = $p->put('soon', 0, 1, 60);
eq($p->statsJob($soon)['state'], 'delayed', 'delay 1: delayed at first');
eq($p->reserveWithTimeout(0), null, 'reserve-with-timeout 0 while the job is delayed: TIMED_OUT');
$t0 = microtime(true);
$got = $p->reserveWithTimeout(10);
check($got !== null && $got->getId() === $soon->getId(), 'reserve-with-timeout waits for the delayed job');
check(microtime(true) - $t0 < 5, 'the delayed job came well within its timeout');
$p->delete($got);

// ---- TTR: DEADLINE_SOON, then the job times out back to ready ----
$short = $p->put('short', 0, 0, 1);
$r = $p->reserveWithTimeout(0);
eq($r->getId(), $short->getId(), 'reserve the TTR-1 job');
throws(DeadlineSoonException::class, function () use ($p) { $p->reserveWithTimeout(2); },
    'reserve-with-timeout while holding a job within its safety margin');
$state = poll(function () use ($p, $short) {
    $s = $p->statsJob($short);
    return $s['state'] === 'ready' ? $s : null;
}, 5, 'TTR-1 job back to ready');
eq($state['timeouts'], '1', 'stats-job timeouts after the TTR ran out');
$p->delete($short);

// ---- pause-tube ----
$p->useTube('ph-a')->watchOnly('ph-a');
$p->pauseTube('ph-a', 3600);
$t = $p->statsTube('ph-a');
eq($t['pause'], '3600', 'stats-tube pause');
check((int) $t['pause-time-left'] > 3500, 'stats-tube pause-time-left');
eq($p->reserveWithTimeout(0), null, 'no reserve from a paused tube');
$p->resumeTube('ph-a');
eq($p->statsTube('ph-a')['pause'], '0', 'resumeTube (pause-tube 0)');
$p->pauseTube('ph-a', 1);
$t0 = microtime(true);
$r = $p->reserveWithTimeout(10);
check($r !== null, 'reserve-with-timeout waits out a 1 s pause');
check(microtime(true) - $t0 < 5, 'the pause ended well within the timeout');
$p->release($r, (int) $p->statsJob($r)['pri'], 0);
throws(ServerException::class, function () use ($p) { $p->pauseTube('ph-nonexistent', 1); },
    'pause-tube of a tube that does not exist');

// ---- errors the library maps ----
throws(JobTooBigException::class, function () use ($p) { $p->put(str_repeat('x', 65536)); },
    'put over the default max job size');
eq($p->listTubeUsed(true), 'ph-a', 'connection still usable after JOB_TOO_BIG');
throws(ServerBadFormatException::class, function () use ($p) { $p->useTube('-bad'); },
    'use of an invalid tube name');
throws(JobNotFoundException::class, function () use ($p) { $p->peek(new JobId(999999)); },
    'peek of a job that does not exist');
throws(ServerException::class, function () use ($p) { $p->statsJob(new JobId(999999)); },
    'stats-job of a job that does not exist');
throws(ServerException::class, function () use ($p) { $p->statsTube('ph-nonexistent'); },
    'stats-tube of a tube that does not exist');

// ---- server stats ----
$g = $p->stats();
foreach (['current-jobs-ready', 'current-jobs-buried', 'current-jobs-delayed', 'cmd-put',
          'cmd-reserve', 'total-jobs', 'current-tubes', 'current-connections',
          'version', 'pid', 'uptime', 'job-timeouts', 'binlog-max-size', 'id', 'hostname'] as $k) {
    check(isset($g[$k]), "stats has $k");
}
eq($g['current-jobs-ready'], '3', 'stats current-jobs-ready');
eq($g['current-jobs-buried'], '0', 'stats current-jobs-buried');
eq($g['current-jobs-reserved'], '0', 'stats current-jobs-reserved');
eq($g['total-jobs'], '7', 'stats total-jobs (7 puts succeeded)');
eq($g['cmd-put'], '8', 'stats cmd-put (8 put commands, one too big)');
eq($g['job-timeouts'], '1', 'stats job-timeouts');
eq($g['cmd-pause-tube'], '4', 'stats cmd-pause-tube');
eq($g['current-connections'], '1', 'stats current-connections');
check(ctype_digit($g['pid']) && (int) $g['pid'] !== getmypid(), 'stats pid is the server\'s');

// A second connection sees the same jobs and its own tube state.
$q = Pheanstalk::create('127.0.0.1', $port, 5);
eq($q->listTubeUsed(true), 'default', 'a new connection uses default');
eq($q->stats()['current-connections'], '2', 'stats current-connections with two clients');
eq($q->peek($first)->getData(), 'first', 'peek from another connection');
$q->watchOnly('ph-a');
$r = $q->reserveWithTimeout(0);
throws(JobNotFoundException::class, function () use ($p, $r) { $p->release($r); },
    'release of a job another connection reserved');
$q->release($r);

// ---- delete, and everything gone ----
foreach ([$first, $urgent, $bin] as $j) {
    $p->delete($j);
}
throws(JobNotFoundException::class, function () use ($p, $first) { $p->delete($first); },
    'delete of a deleted job');
$t = $p->statsTube('ph-a');
eq([$t['current-jobs-ready'], $t['current-jobs-buried'], $t['current-jobs-delayed'], $t['cmd-delete']],
   ['0', '0', '0', '5'], 'stats-tube after deleting everything');
eq($p->peekReady(), null, 'peek-ready after deleting everything');

// Tubes nobody uses or watches and that hold no job go away.
$q->watchOnly('default');
$p->useTube('default')->watchOnly('default');
eq($p->listTubes(), ['default'], 'list-tubes after the tubes are left empty and unused');

done('pheanstalk');
