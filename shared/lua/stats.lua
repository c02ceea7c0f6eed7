-- stats() -> {due_now, scheduled, leased, dead, enqueued_total}
-- The queue gauges, in one cheap call: counts of sorted sets, no scans.
local now = now_ms()
local due_now = redis.call('ZCOUNT', P .. 'due', '-inf', now)
local scheduled = redis.call('ZCARD', P .. 'due') - due_now
local leased = redis.call('ZCARD', P .. 'leases')
local dead = redis.call('ZCARD', P .. 'dead')
local enqueued = tonumber(redis.call('HGET', P .. 'counts', 'enqueued') or 0) or 0
return { due_now, scheduled, leased, dead, enqueued }
