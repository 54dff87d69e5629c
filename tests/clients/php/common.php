<?php
// Shared by the PHP client scenarios: strict error handling, the port from
// argv, and small assertions that name what was checked when they fail.
// A scenario exits 0 only if every check held; the first failed check (or
// any uncaught exception, warning or deprecation) exits non-zero.

declare(strict_types=1);

error_reporting(E_ALL);
// A warning or deprecation raised inside a library is a finding too: turn it
// into an exception so it cannot scroll past unnoticed.
set_error_handler(function (int $no, string $msg, string $file, int $line): bool {
    throw new ErrorException($msg, 0, $no, $file, $line);
});
set_exception_handler(function (Throwable $e): void {
    fwrite(STDERR, sprintf("FAIL: uncaught %s: %s\n  at %s:%d\n%s\n",
        get_class($e), $e->getMessage(), $e->getFile(), $e->getLine(), $e->getTraceAsString()));
    exit(1);
});

function scenario_port(): int
{
    global $argv;
    if (!isset($argv[1]) || !ctype_digit($argv[1])) {
        fwrite(STDERR, "usage: php {$argv[0]} PORT\n");
        exit(2);
    }
    return (int) $argv[1];
}

$GLOBALS['checks'] = 0;

function fail(string $what): void
{
    $bt = debug_backtrace(DEBUG_BACKTRACE_IGNORE_ARGS);
    $where = '';
    foreach ($bt as $frame) {
        if (isset($frame['file']) && $frame['file'] !== __FILE__) {
            $where = sprintf(' (%s:%d)', basename($frame['file']), $frame['line']);
            break;
        }
    }
    fwrite(STDERR, "FAIL: $what$where\n");
    exit(1);
}

function check(bool $cond, string $what): void
{
    $GLOBALS['checks']++;
    if (!$cond) {
        fail($what);
    }
}

// Strict equality, with both values shown when it does not hold.
function eq($got, $want, string $what): void
{
    $GLOBALS['checks']++;
    if ($got !== $want) {
        fail(sprintf('%s: got %s, want %s', $what, var_export($got, true), var_export($want, true)));
    }
}

// Runs $fn and checks that it throws an instance of $class; returns it.
function throws(string $class, callable $fn, string $what): Throwable
{
    $GLOBALS['checks']++;
    try {
        $fn();
    } catch (Throwable $e) {
        if ($e instanceof $class) {
            return $e;
        }
        fail(sprintf('%s: threw %s (%s), want %s', $what, get_class($e), $e->getMessage(), $class));
    }
    fail("$what: returned normally, want $class");
}

// Calls $fn until it returns something other than null/false, for at most
// $seconds; returns that value. For states that need real time to pass
// (a delay, a TTR): readiness by polling, never a fixed sleep.
function poll(callable $fn, float $seconds, string $what)
{
    $deadline = microtime(true) + $seconds;
    do {
        $v = $fn();
        if ($v !== null && $v !== false) {
            return $v;
        }
        usleep(20000);
    } while (microtime(true) < $deadline);
    fail("$what: not within {$seconds}s");
}

function done(string $name): void
{
    printf("%s: %d checks passed\n", $name, $GLOBALS['checks']);
    exit(0);
}

// pheanstalk 4 parses YAML replies line by line and keeps a value's quotes.
// beanstalkd 1.13 (like our server) quotes tube names in stats-job ("tube")
// and stats-tube ("name"); 1.12 does not. The scenarios accept both by
// unquoting here: a limitation of the client's parser, not of either server.
function unquote(string $v): string
{
    if (strlen($v) >= 2 && $v[0] === '"' && substr($v, -1) === '"') {
        return substr($v, 1, -1);
    }
    return $v;
}
