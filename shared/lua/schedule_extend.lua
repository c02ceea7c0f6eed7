-- schedule_extend(tick_ms, replica, lease_ms) -> 1 extended | 0 not the holder
-- Heartbeat of a running refresh: the per-tick lock is a lease, renewed while
-- the winner works. If the winner dies, the lease runs out and another
-- replica adopts the run (schedule_adopt).
local lock = schedule_tick_key(ARGV[1])
if redis.call('GET', lock) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', lock, tonumber(ARGV[3]))
return 1
