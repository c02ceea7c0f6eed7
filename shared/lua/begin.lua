-- begin(lease_ms, id, token, spacing_ms, rate_per_sec, burst) -> 1 held | 0 lost | -ms throttled
-- Called right before a step calls Flinks, as its one script call:
-- 1. Confirms the claim still holds (token matches, lease present) and
--    renews the lease; a lost one is given back (give_back_claim).
-- 2. Applies the global rate limit toward Flinks (GCRA over a single
--    `ratelimit` key shared by every worker): at most `burst` calls at once
--    and `rate_per_sec` after that. A throttled caller gets -wait_ms and
--    calls again after waiting; rate 0 means no limit.
-- 3. Records the earliest time the next call of this job may be made
--    (now + spacing): if this worker dies mid-call, reap requeues the step
--    no sooner than that, so a crash never makes two polls closer than the
--    poll interval.
local lease, id, token = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local spacing, rate, burst = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local job = job_key(id)
if not holds(redis.call('HGET', job, 'token'), token) or not redis.call('ZSCORE', K.leases, id) then
  give_back_claim(job)
  return 0
end
local now = now_ms()
if rate > 0 then
  local key = K.ratelimit
  local emission = 1000 / rate
  local tolerance = emission * (math.max(burst, 1) - 1)
  local tat = math.max(tonumber(redis.call('GET', key) or now) or now, now)
  if tat - now > tolerance then
    return -math.max(1, math.ceil(tat - now - tolerance))
  end
  local new_tat = tat + emission
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
end
redis.call('ZADD', K.leases, now + lease, id)
redis.call('HSET', job, 'not_before', now + spacing)
return 1
