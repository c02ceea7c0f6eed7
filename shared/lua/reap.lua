-- reap(limit, sweep) -> {requeued, timed_out, orphans}
-- Leases past expiry go back to due (now, or the job's not_before if a call
-- was in flight: see begin.lua), their fencing token deleted so the crashed
-- or stalled holder can no longer commit. Unleased jobs past their bound
-- finish as timed_out even if no worker picks them up: the polling deadline,
-- or, for a job without a session yet, the authorize deadline (claim.lua).
-- Index entries whose job hash is gone (evicted, deleted) are dropped and
-- counted as orphans, never read as jobs: one missing hash must not break
-- every reap. Besides the leases and deadlines it reaps, each call sweeps
-- about `sweep` entries of each due queue, `dead` and `finished`, resuming
-- where the previous call stopped (ZSCAN cursors kept in `reap:sweep`);
-- a `sweep` of 0 sweeps nothing (the worker sweeps every few passes only:
-- orphans are rare, and a sweep reads every entry it pages through).
local limit, sweep = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local requeued, timed_out, orphans = 0, 0, 0
local expired = redis.call('ZRANGE', K.leases, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', K.leases, id)
  local job = job_key(id)
  if redis.call('EXISTS', job) == 1 then
    redis.call('HDEL', job, 'token')
    local not_before = tonumber(redis.call('HGET', job, 'not_before') or 0) or 0
    redis.call('ZADD', due_key(id), math.max(now, not_before), id)
    requeued = requeued + 1
  else
    drop_orphan(id)
    orphans = orphans + 1
  end
end
local late = redis.call('ZRANGE', K.deadlines, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(late) do
  local job = job_key(id)
  if redis.call('EXISTS', job) == 0 then
    drop_orphan(id)
    orphans = orphans + 1
  elseif not redis.call('ZSCORE', K.leases, id) then
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
local cursors = K.reap_sweep
-- (cursor field, index): the field names predate the generated bindings
for _, swept in ipairs(sweep == 0 and {} or { { 'due:high', K.due_high }, { 'due', K.due }, { 'due:low', K.due_low },
    { 'dead', K.dead }, { 'finished', K.finished } }) do
  local name, index = swept[1], swept[2]
  local page = redis.call('ZSCAN', index, redis.call('HGET', cursors, name) or '0',
    'COUNT', sweep)
  for i = 1, #page[2], 2 do
    local id = page[2][i]
    if redis.call('EXISTS', job_key(id)) == 0 then
      drop_orphan(id)
      orphans = orphans + 1
    end
  end
  redis.call('HSET', cursors, name, page[1])
end
return { requeued, timed_out, orphans }
