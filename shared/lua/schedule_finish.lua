-- schedule_finish(tick_ms, replica, enqueued, already_active, already_in_batch)
--   -> 1 recorded | 0 the run was adopted by another replica
-- Records the counts of a finished refresh and releases the tick's lease,
-- only if this replica still holds it.
local tick, replica = ARGV[1], ARGV[2]
local lock = schedule_tick_key(tick)
if redis.call('GET', lock) ~= replica then return 0 end
redis.call('HSET', schedule_run_key(tick), 'state', 'done',
  'enqueued', ARGV[3], 'already_active', ARGV[4], 'already_in_batch', ARGV[5],
  'finished', now_ms())
redis.call('DEL', lock)
return 1
