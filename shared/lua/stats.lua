-- stats() -> {due_now, scheduled, leased, dead, enqueued_total}
-- The queue gauges, in one cheap call: counts of sorted sets, no scans.
local now = now_ms()
local due_now, scheduled = 0, 0
for _, queue in ipairs(DUE_QUEUES) do
  local ready = redis.call('ZCOUNT', queue, '-inf', now)
  due_now = due_now + ready
  scheduled = scheduled + redis.call('ZCARD', queue) - ready
end
local leased = redis.call('ZCARD', K.leases)
local dead = redis.call('ZCARD', K.dead)
local enqueued = tonumber(redis.call('HGET', K.counts, 'enqueued') or 0) or 0
return { due_now, scheduled, leased, dead, enqueued }
