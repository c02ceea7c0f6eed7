-- reap(limit) -> {requeued, timed_out}
-- Leases past expiry go back to due (now, or the job's not_before if a call
-- was in flight: see begin.lua), with a new fencing token so the crashed or
-- stalled holder can no longer commit. Unleased jobs past their bound finish
-- as timed_out even if no worker picks them up: the polling deadline, or,
-- for a job without a session yet, the authorize deadline (claim.lua).
local limit = tonumber(ARGV[1])
local now = now_ms()
local expired = redis.call('ZRANGE', P .. 'leases', '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', P .. 'leases', id)
  local job = P .. 'job:' .. id
  if redis.call('EXISTS', job) == 1 then
    redis.call('HINCRBY', job, 'seq', 1)
    local not_before = tonumber(redis.call('HGET', job, 'not_before') or 0) or 0
    redis.call('ZADD', due_key(id), math.max(now, not_before), id)
  end
end
local timed_out = 0
local late = redis.call('ZRANGE', P .. 'deadlines', '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(late) do
  if not redis.call('ZSCORE', P .. 'leases', id) then
    local job = P .. 'job:' .. id
    if (redis.call('HGET', job, 'deadline') or '') == '' then
      redis.call('HSET', job, 'err_code', 'AUTHORIZE_TIMEOUT',
        'err_msg', 'no session by the authorize deadline (FLINKQ_AUTHORIZE_TIMEOUT)', 'last', 'reap:authorize_deadline')
    else
      redis.call('HSET', job, 'err_code', 'POLL_TIMEOUT',
        'err_msg', 'deadline passed while the job waited to be polled', 'last', 'reap:deadline')
    end
    finish(id, 'timed_out', now)
    timed_out = timed_out + 1
  end
end
return { #expired, timed_out }
