-- begin(lease_ms, id, seq, spacing_ms) -> 1 held | 0 lost
-- Called right before a step calls Flinks. Confirms the claim still holds
-- (token matches, lease present), renews the lease, and records the earliest
-- time the next call of this job may be made (now + spacing): if this worker
-- dies mid-call, reap requeues the step no sooner than that, so a crash never
-- makes two polls closer than the poll interval.
local lease, id, seq, spacing = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local job = P .. 'job:' .. id
if redis.call('HGET', job, 'seq') ~= seq or not redis.call('ZSCORE', P .. 'leases', id) then
  return 0
end
local now = now_ms()
redis.call('ZADD', P .. 'leases', now + lease, id)
redis.call('HSET', job, 'not_before', now + spacing)
return 1
