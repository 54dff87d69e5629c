# beaneater (Debian ruby-beaneater, 1.1.x), unmodified, over its whole public
# API against a fresh daemon on 127.0.0.1:PORT: Beaneater (connection,
# stats, close), Tubes (all, used, watched, use, watch, watch!, ignore,
# reserve, find/[]), Tube (put with pri/delay/ttr, peek, reserve, kick, stats,
# pause, clear), Jobs (find/peek/[], register, process!), Job (bury, release,
# touch, delete, kick, stats, reserved?, exists?, tube, ttr, pri, delay).
#
# beaneater 1.1 offers no reserve-job, so it is not covered here.
# Exit status 0 means every check held.

require 'beaneater'

$checks = 0

def fail!(what)
  where = caller.find { |c| c.start_with?(__FILE__) } || caller.first
  warn "FAIL: #{what} (#{File.basename(where.split(':in').first)})"
  exit 1
end

def check(cond, what)
  $checks += 1
  fail!(what) unless cond
end

def eq(got, want, what)
  $checks += 1
  fail!("#{what}: got #{got.inspect}, want #{want.inspect}") unless got == want
end

def raises(klass, what)
  $checks += 1
  begin
    yield
  rescue Exception => e # rubocop:disable Lint/RescueException
    return e if e.is_a?(klass)
    fail!("#{what}: raised #{e.class} (#{e.message}), want #{klass}")
  end
  fail!("#{what}: returned normally, want #{klass}")
end

# Polls until the block gives a truthy value (states that need real time to
# pass: readiness by polling, never a fixed sleep).
def poll(seconds, what)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  loop do
    v = yield
    return v if v
    fail!("#{what}: not within #{seconds}s") if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    sleep 0.02
  end
end

def elapsed
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  yield
  Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
end

port = ARGV[0]
abort "usage: ruby #{$PROGRAM_NAME} PORT" unless port =~ /\A\d+\z/
addr = "127.0.0.1:#{port}"
bn = Beaneater.new(addr)

# ---- a fresh server ----
eq bn.tubes.all.map(&:name), ['default'], 'list-tubes on a fresh server'
eq bn.tubes.used.name, 'default', 'list-tube-used on a fresh server'
eq bn.tubes.watched.map(&:name), ['default'], 'list-tubes-watched on a fresh server'
eq bn.tubes['default'].peek(:ready), nil, 'peek-ready on an empty tube'
eq bn.tubes['default'].peek(:delayed), nil, 'peek-delayed on an empty tube'
eq bn.tubes['default'].peek(:buried), nil, 'peek-buried on an empty tube'

# ---- put with priority / delay / TTR (Tube#put uses the tube first) ----
tube = bn.tubes['rb-a']
eq tube.name, 'rb-a', 'Tubes#[] names the tube'
res = tube.put('first', pri: 10, ttr: 30)
eq res[:status], 'INSERTED', 'put status'
first_id = res[:id]
check first_id =~ /\A\d+\z/, 'put returns the id'
eq bn.tubes.used.name, 'rb-a', 'put used its tube'
urgent_id = tube.put('urgent', pri: 5, ttr: 30)[:id]
check urgent_id.to_i > first_id.to_i, 'job ids grow'
binary = "bin\r\n\0\xff\r\nend".b
bin_id = tube.put(binary)[:id] # library defaults: pri 65536, delay 0, ttr 120
eq bn.tubes.all.map(&:name).sort, %w[default rb-a], 'list-tubes after put'

first = bn.jobs.find(first_id)
eq first.body, 'first', 'Jobs#find body'
eq first.id, first_id, 'Jobs#find id'
check !first.reserved, 'a peeked job is not marked reserved'
st = first.stats
eq [st.id, st.tube, st.state, st.pri, st.delay, st.ttr, st.reserves],
   [first_id.to_i, 'rb-a', 'ready', 10, 0, 30, 0], 'stats-job of a new job'
eq [first.tube, first.ttr, first.pri, first.delay], ['rb-a', 30, 10, 0], 'Job#tube/ttr/pri/delay'
bin = bn.jobs.peek(bin_id)
eq bin.body.b, binary, 'binary body round-trips byte for byte'
eq [bin.pri, bin.ttr], [65_536, 120], 'put defaults from Beaneater.configuration'
eq bn.jobs[urgent_id].body, 'urgent', 'Jobs#[]'
eq bn.jobs.find(999_999), nil, 'Jobs#find of a job that does not exist'
ready = tube.peek(:ready)
eq [ready.id, ready.body], [urgent_id, 'urgent'], 'peek-ready gives the most urgent job'

ts = tube.stats
eq [ts.name, ts.current_jobs_ready, ts.total_jobs, ts.current_using, ts.current_watching, ts.pause],
   ['rb-a', 3, 3, 1, 0, 0], 'stats-tube'
eq ts['current_jobs_ready'], 3, 'StatStruct#[]'

# ---- watch / ignore ----
bn.tubes.watch('rb-a')
eq bn.tubes.watched.map(&:name).sort, %w[default rb-a], 'list-tubes-watched after watch'
bn.tubes.ignore('default')
eq bn.tubes.watched.map(&:name), ['rb-a'], 'list-tubes-watched after ignore'
e = raises(Beaneater::NotIgnoredError, 'ignore of the last watched tube') { bn.tubes.ignore('rb-a') }
eq e.status, 'NOT_IGNORED', 'NotIgnoredError status'
eq tube.stats.current_watching, 1, 'stats-tube current-watching'
raises(Beaneater::InvalidTubeName, 'use of an invalid tube name') { bn.tubes.use('-bad') }
raises(Beaneater::InvalidTubeName, 'watch of an invalid tube name') { bn.tubes.watch('-bad') }
eq bn.tubes.watched.map(&:name), ['rb-a'], 'watch list unchanged by the refused watch'

# ---- reserve, reserve with timeout, touch, release, bury, kick ----
r1 = bn.tubes.reserve(0)
eq [r1.id, r1.body], [urgent_id, 'urgent'], 'reserve-with-timeout 0 gives the most urgent job'
check r1.reserved? && r1.reserved, 'a reserved job knows it'
r2 = nil
bn.tubes.reserve { |j| r2 = j }
eq r2&.id, first_id, 'reserve (blocking, with a block) gives the next by priority'
eq [r2.stats.state, r2.stats.reserves], ['reserved', 1], 'stats-job of a reserved job'
check r2.stats.time_left <= 30, 'time-left within the TTR'
eq r2.touch[:status], 'TOUCHED', 'touch'
eq r2.stats.state, 'reserved', 'touched job stays reserved'

eq r1.release(pri: 20, delay: 0)[:status], 'RELEASED', 'release with a new priority'
eq [r1.stats.state, r1.pri, r1.stats.releases], ['ready', 20, 1], 'released job'
check !r1.reserved?, 'a released job is not reserved'
raises(Beaneater::JobNotReserved, 'release of a job not reserved (checked by the library)') { r1.release }

eq r2.bury(pri: 7)[:status], 'BURIED', 'bury with a new priority'
eq [r2.stats.state, r2.pri, r2.stats.buries], ['buried', 7, 1], 'buried job'
eq tube.peek(:buried).id, first_id, 'peek-buried'
eq tube.stats.current_jobs_buried, 1, 'stats-tube current-jobs-buried'
raises(Beaneater::JobNotReserved, 'touch of a buried job (checked by the library)') { r2.touch }

kicked = tube.kick(10)
eq [kicked[:status], kicked[:id]], %w[KICKED 1], 'kick moves the one buried job'
eq [r2.stats.state, r2.stats.kicks], ['ready', 1], 'kicked job is ready'
eq tube.kick(10)[:id], '0', 'kick with nothing buried or delayed'

r = tube.reserve(0)
eq r.id, first_id, 'Tube#reserve gives the kicked job first (pri 7)'
r.bury # priority kept: Job#bury reads it from stats-job
eq r.pri, 7, 'bury keeps the priority by default'
eq r.kick[:status], 'KICKED', 'kick-job of a buried job'
eq r.stats.state, 'ready', 'kick-job made it ready'
raises(Beaneater::NotFoundError, 'kick-job of a ready job') { r.kick }

# A second connection: the server, not the library, refuses a job it holds.
other = Beaneater.new(addr)
eq other.tubes.used.name, 'default', 'a new connection uses default'
eq other.stats.current_connections, 2, 'stats current-connections with two clients'
held = other.tubes['rb-a'].reserve(0)
mine = bn.jobs.find(held.id) # not reserved by bn, but reserved? asks stats-job: "reserved"
check mine.reserved?, 'reserved? asks the server'
raises(Beaneater::NotFoundError, 'release of a job another connection reserved') { mine.release }
raises(Beaneater::NotFoundError, 'delete of a job another connection reserved') { mine.delete }
held.release
other.close

# ---- delayed jobs ----
far_id = tube.put('far', pri: 0, delay: 3600)[:id]
far = bn.jobs.find(far_id)
eq [far.stats.state, far.delay], ['delayed', 3600], 'put with a delay'
check far.stats.time_left > 3500, 'delayed time-left'
eq tube.peek(:delayed).id, far_id, 'peek-delayed'
far.kick
eq far.stats.state, 'ready', 'kick-job of a delayed job'
far.delete
far2 = bn.jobs.find(tube.put('far2', delay: 3600)[:id])
eq tube.kick(5)[:id], '1', 'kick moves a delayed job when nothing is buried'
eq far2.stats.state, 'ready', 'kicked delayed job is ready'
far2.delete

# A short delay passes in real time: Tube#reserve (watch! + reserve) waits.
dtube = bn.tubes['rb-delay']
soon_id = dtube.put('soon', delay: 1)[:id]
eq bn.jobs.find(soon_id).stats.state, 'delayed', 'delay 1: delayed at first'
raises(Beaneater::TimedOutError, 'reserve-with-timeout 0 while the job is delayed') { dtube.reserve(0) }
eq bn.tubes.watched.map(&:name), ['rb-delay'], 'Tube#reserve watched only its tube'
got = nil
t = elapsed { got = dtube.reserve(10) }
eq got.id, soon_id, 'reserve-with-timeout waits for the delayed job'
check t < 5, 'the delayed job came well within its timeout'
got.delete

# ---- TTR: DEADLINE_SOON, then the job times out back to ready ----
short_id = dtube.put('short', ttr: 1)[:id]
eq dtube.reserve(0).id, short_id, 'reserve the TTR-1 job'
raises(Beaneater::DeadlineSoonError, 'reserve while holding a job within its safety margin') do
  bn.tubes.reserve(2)
end
short = bn.jobs.find(short_id)
poll(5, 'TTR-1 job back to ready') { short.stats.state == 'ready' }
eq short.stats.timeouts, 1, 'stats-job timeouts after the TTR ran out'
short.delete
check !short.exists?, 'Job#exists? after delete'
raises(Beaneater::NotFoundError, 'delete of a deleted job') { short.delete }
raises(Beaneater::NotFoundError, 'stats-job of a deleted job') { short.stats }

# ---- pause-tube ----
bn.tubes.watch!('rb-a')
eq tube.pause(3600)[:status], 'PAUSED', 'pause-tube'
eq tube.stats.pause, 3600, 'stats-tube pause'
check tube.stats.pause_time_left > 3500, 'stats-tube pause-time-left'
raises(Beaneater::TimedOutError, 'no reserve from a paused tube') { bn.tubes.reserve(0) }
tube.pause(0)
eq tube.stats.pause, 0, 'pause-tube 0 resumes'
tube.pause(1)
r = nil
t = elapsed { r = bn.tubes.reserve(10) }
check t < 5, 'reserve-with-timeout waits out a 1 s pause'
pri0 = r.pri
releases0 = r.stats.releases
r.release # priority and delay kept: Job#release reads them from stats-job
eq [r.stats.state, r.pri, r.stats.releases], ['ready', pri0, releases0 + 1], 'release with defaults'
raises(Beaneater::NotFoundError, 'pause-tube of a tube that does not exist') do
  bn.tubes['rb-nonexistent'].pause(1)
end

# ---- errors ----
raises(Beaneater::JobTooBigError, 'put over the default max job size') { tube.put('x' * 65_536) }
eq bn.tubes.used.name, 'rb-a', 'connection still usable after JOB_TOO_BIG'

# ---- server stats ----
s = bn.stats
%w[current_jobs_ready current_jobs_buried cmd_put total_jobs current_tubes version pid uptime
   job_timeouts id hostname].each { |k| check s.keys.include?(k), "stats has #{k}" }
eq s.current_jobs_ready, 3, 'stats current-jobs-ready (Stats#method_missing)'
eq s['current_jobs_reserved'], 0, 'stats current-jobs-reserved (Stats#[])'
eq s.total_jobs, 7, 'stats total-jobs (7 puts succeeded)'
eq s.cmd_put, 8, 'stats cmd-put (8 put commands, one too big)'
eq s.job_timeouts, 1, 'stats job-timeouts'
check s.version.is_a?(String) && !s.version.empty?, 'stats version'
check s.pid != Process.pid, "stats pid is the server's"

# ---- Tube#clear: ready, buried and delayed jobs all go ----
ctube = bn.tubes['rb-clear']
ctube.put('c-ready', pri: 1)
ctube.put('c-delayed', delay: 3600)
ctube.put('c-buried', pri: 0)
bn.tubes.watch!('rb-clear')
bn.tubes.reserve(0) { |j| eq j.body, 'c-buried', 'reserve in rb-clear' }.bury
cs = ctube.stats
eq [cs.current_jobs_ready, cs.current_jobs_delayed, cs.current_jobs_buried], [1, 1, 1], 'one job in each state'
ctube.clear
cs = ctube.stats
eq [cs.current_jobs_ready, cs.current_jobs_delayed, cs.current_jobs_buried], [0, 0, 0], 'Tube#clear empties it'

# ---- Jobs#register / process!: the library's worker loop ----
class Retryable < StandardError; end
done_bodies = []
work = bn.tubes['rb-work']
work.put('ok', pri: 1)
work.put('retry', pri: 2)
work.put('boom', pri: 3)
work.put('stop', pri: 100)
bn.jobs.register('rb-work', retry_on: [Retryable], max_retries: 1) do |job|
  case job.body
  when 'ok' then done_bodies << 'ok'
  when 'retry' then raise Retryable
  when 'boom' then raise 'boom'
  when 'stop' then raise Beaneater::AbortProcessingError
  end
end
bn.jobs.process!(release_delay: 0)
eq done_bodies, ['ok'], 'process! ran the good job'
ws = work.stats
eq [ws.current_jobs_ready, ws.current_jobs_buried, ws.cmd_delete], [0, 3, 1],
   'process!: ok deleted; retry (after one release), boom and stop buried'
retried = work.peek(:buried)
eq [retried.body, retried.stats.releases], ['retry', 1], 'the retried job was released once, then buried'

# ---- delete everything ----
[first_id, urgent_id, bin_id].each { |id| bn.jobs.find(id).delete }
work.clear
tube.clear
eq bn.stats.current_jobs_ready + bn.stats.current_jobs_buried, 0, 'nothing left'
bn.tubes.use('default')
bn.tubes.watch!('default')
eq bn.tubes.all.map(&:name), ['default'], 'list-tubes after the tubes are left empty and unused'

bn.close
check bn.connection.connection.nil?, 'close drops the socket'
puts "beaneater: #{$checks} checks passed"
